import DMiloFormats
import DMiloKernels
import Foundation
import XCTest

@testable import DMiloModel

/// A corrupt model file is an error naming the file and the field, before anything is sized from it; never an
/// abort. The mutation loops run seeded random edits of the bundled model's GGUF and safetensors headers.
final class ModelFileHardeningTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let bundled = repo.appendingPathComponent("Models/fashion-mnist-32").path

    func temp(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = Fixtures.tempDir() + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// A dmilo GGUF holding only metadata: the bundled config and the given schedule keys (no tensors, so only
    /// `ModelFile` opening is exercised).
    func scheduleFile(_ schedule: [(String, GGUFValue)]) throws -> String {
        var w = GGUFWriter()
        w.add(GGUFKeys.architecture, .string(GGUFKeys.architectureValue))
        let config = try String(contentsOfFile: Self.bundled + "/config.json", encoding: .utf8)
        w.add(GGUFKeys.configJSON, .string(config))
        for (k, v) in schedule { w.add(k, v) }
        return try temp("schedule.gguf", w.encoded())
    }

    func assertRefused(_ path: String, field: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelFile(path: path), file: file, line: line) { e in
            guard let f = e as? FormatError else { return XCTFail("not a FormatError: \(e)", file: file, line: line) }
            XCTAssertEqual(f.file, path, file: file, line: line)
            XCTAssertEqual(f.field, field, "\(f)", file: file, line: line)
        }
    }

    func testScheduleIsValidatedBeforeAllocation() throws {
        let steps = GGUFKeys.trainSteps
        XCTAssertEqual(try ModelFile(path: try scheduleFile([])).schedule, NoiseSchedule())  // absent keys: DDPM default
        XCTAssertEqual(try ModelFile(path: try scheduleFile([(steps, .uint32(4000))])).schedule.trainSteps, 4000)
        for bad: GGUFValue in [.uint32(0xFFFF_FFFF), .uint32(0), .int32(-1000), .int64(.min), .uint64(.max), .float32(.nan), .string("1000")] {
            assertRefused(try scheduleFile([(steps, bad)]), field: steps)
        }
        for bad: GGUFValue in [.float32(.nan), .float32(-0.02), .float32(0), .float64(.infinity), .float32(1), .string("x")] {
            assertRefused(try scheduleFile([(GGUFKeys.betaStart, bad)]), field: GGUFKeys.betaStart)
            assertRefused(try scheduleFile([(GGUFKeys.betaEnd, bad)]), field: GGUFKeys.betaEnd)
        }
        assertRefused(try scheduleFile([(GGUFKeys.betaStart, .float32(0.5)), (GGUFKeys.betaEnd, .float32(0.1))]), field: GGUFKeys.betaEnd)
        assertRefused(try scheduleFile([(GGUFKeys.betaSchedule, .string("cosine"))]), field: GGUFKeys.betaSchedule)
        assertRefused(try scheduleFile([(GGUFKeys.predictionType, .string("v_prediction"))]), field: GGUFKeys.predictionType)
    }

    func testADMScheduleAndHeadsAreValidated() throws {
        let gguf = try GGUFFile(path: Fixtures.folder("adm_ffhq_small") + "/model.gguf")
        let json = try XCTUnwrap(gguf.metadata[GGUFKeys.configJSON]?.stringValue)
        var d = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        XCTAssertNoThrow(try ADMConfig.parse(JSONSerialization.data(withJSONObject: d), file: "c.json"))
        for (k, v) in [
            ("num_train_timesteps", 0xFFFF_FFFF as Any), ("num_train_timesteps", -1), ("num_train_timesteps", 0),
            ("num_head_channels", 0), ("num_heads_upsample", 0), ("image_size", 1 << 40), ("num_channels", 1 << 30),
            ("channel_mult", [1, 2, 4, 8, 16, 32, 64, 128, 256]), ("channel_mult", [1 << 20]),
        ] {
            let saved = d[k]
            d[k] = v
            XCTAssertThrowsError(try ADMConfig.parse(JSONSerialization.data(withJSONObject: d), file: "c.json"), "\(k) = \(v)") { e in
                XCTAssertEqual((e as? FormatError)?.field.map { ["channel_mult", "num_channels", k].contains($0) }, true, "\(e)")
            }
            d[k] = saved
        }
    }

    func testAbsurdUNetConfigValuesAreRefused() throws {
        var d = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.bundled + "/config.json"))) as! [String: Any]
        for (k, v) in [
            ("block_out_channels", [1 << 40, 1 << 40, 1 << 40] as Any), ("sample_size", 1 << 31),
            ("layers_per_block", 1 << 20), ("attention_head_dim", 1 << 33),
            ("down_block_types", Array(repeating: "DownBlock2D", count: 70)),
        ] {
            let saved = d[k]
            d[k] = v
            XCTAssertThrowsError(try UNetConfig.parse(JSONSerialization.data(withJSONObject: d), file: "c.json"), k) { e in
                XCTAssertEqual((e as? FormatError)?.field, k, "\(e)")
            }
            d[k] = saved
        }
    }

    /// A one-tensor GGUF file whose tensor-table fields can be overwritten.
    func oneTensorGGUF() -> (bytes: [UInt8], dims: Int, offset: Int) {
        var w = GGUFWriter()
        w.add(GGUFKeys.architecture, .string("dmilo.test"))
        w.addTensor("t.weight", shape: [2, 3, 4, 32], values: (0..<768).map { Float($0) }, type: .f32)
        let bytes = w.encoded()
        let name = Array("t.weight".utf8)
        let at = (0...(bytes.count - name.count)).first { Array(bytes[$0..<($0 + name.count)]) == name }!
        let dims = at + name.count + 4
        return (bytes, dims, dims + 4 * 8 + 4)
    }

    func put(_ v: UInt64, into bytes: inout [UInt8], at o: Int) {
        for i in 0..<8 { bytes[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    func testTensorOffsetsAndDimsAreCheckedAgainstTheFile() throws {
        let (good, dims, offset) = oneTensorGGUF()
        XCTAssertEqual(try GGUFFile(path: try temp("ok.gguf", good)).tensors["t.weight"]?.shape, [2, 3, 4, 32])
        func refused(_ edit: (inout [UInt8]) -> Void, _ what: String) throws {
            var b = good
            edit(&b)
            let p = try temp("bad.gguf", b)
            XCTAssertThrowsError(try GGUFFile(path: p), what) { e in
                XCTAssertEqual((e as? FormatError)?.file, p, "\(e)")
                XCTAssertTrue("\(e)".contains("t.weight"), "\(e)")
            }
        }
        for off: UInt64 in [32, UInt64(good.count), 1 << 40, UInt64(Int.max / 2), UInt64.max] {
            try refused({ put(off, into: &$0, at: offset) }, "offset \(off)")
        }
        for d: UInt64 in [1 << 31, 1 << 30, 1 << 20, UInt64.max] {
            try refused({ for k in 0..<4 { put(d, into: &$0, at: dims + 8 * k) } }, "dims \(d)")
        }
        try refused({ put(1 << 16, into: &$0, at: dims) }, "innermost dim past the data")
    }

    func testTruncatedModelFilesAreRefused() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.bundled + "/model-q8_0.gguf")))
        for cut in [0, 3, 4, 8, 23, 24, 100, 1000, 20_000, bytes.count / 2, bytes.count - 1] {
            let p = try temp("cut.gguf", Array(bytes[0..<cut]))
            XCTAssertThrowsError(try ModelFile(path: p).instantiate(), "cut at \(cut)") { e in
                XCTAssertTrue("\(e)".contains(p), "\(e)")
            }
        }
        let st = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.bundled + "/diffusion_pytorch_model.safetensors")))
        for cut in [0, 7, 8, 100, st.count / 2, st.count - 1] {
            let p = try temp("cut.safetensors", Array(st[0..<cut]))
            XCTAssertThrowsError(try SafetensorsFile(path: p), "cut at \(cut)")
        }
    }

    func testAbsurdSafetensorsHeadersAreRefused() throws {
        func header(_ json: String, payload: Int = 16) throws -> String {
            var b: [UInt8] = []
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { b.append(contentsOf: $0) }
            return try temp("h.safetensors", b + Array(json.utf8) + [UInt8](repeating: 0, count: payload))
        }
        for json in [
            #"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}}"#,
            #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,9007199254740990]}}"#,
            #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}"#,
            #"{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#,
            String(repeating: "[", count: 100_000),
        ] {
            XCTAssertThrowsError(try SafetensorsFile(path: try header(json)), String(json.prefix(60)))
        }
    }

    // MARK: seeded mutation loops

    /// Overwrites 1–4 random bytes of `bytes[0..<headerLength]` per case, opens the result as a model (and, when
    /// that succeeds, instantiates it), and asserts a clean, file-naming error or success. Returns (errors, loads).
    func mutate(folder: String, file: String, headerLength: Int, cases: Int, seed: UInt64) throws -> (Int, Int) {
        let path = folder + "/" + file
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        defer { try? handle.close() }
        var rng = SeededRandom(seed: seed)
        var errors = 0, loads = 0
        for i in 0..<cases {
            var header = Array(original[0..<headerLength])
            for _ in 0...(rng.next() % 4) {
                let at = Int(rng.next() % UInt64(headerLength))
                header[at] = rng.next() % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : header[at] ^ (1 << UInt8(rng.next() % 8))
            }
            try handle.seek(toOffset: 0)
            handle.write(Data(header))
            do {
                let m = try ModelFile(path: file.hasSuffix(".gguf") ? path : folder)
                _ = try m.instantiate()
                loads += 1
            } catch let e as FormatError {
                XCTAssertTrue(e.file.hasPrefix(folder), "case \(i): \(e)")
                errors += 1
            } catch let e as WeightMismatchError {
                XCTAssertTrue(e.file.hasPrefix(folder), "case \(i): \(e)")
                errors += 1
            } catch let e as ModelError {
                XCTAssertTrue(e.message.contains(folder), "case \(i): \(e)")
                errors += 1
            }
        }
        return (errors, loads)
    }

    func testMutatedGGUFHeadersFailCleanly() throws {
        let dir = Fixtures.tempDir()
        try FileManager.default.copyItem(atPath: Self.bundled + "/model-q8_0.gguf", toPath: dir + "/m.gguf")
        let headerLength = try XCTUnwrap(GGUFFile(path: dir + "/m.gguf").tensors.values.map(\.fileOffset).min())
        let (errors, loads) = try mutate(folder: dir, file: "m.gguf", headerLength: headerLength, cases: 2000, seed: 16)
        print("GGUF header mutations: \(errors) refused, \(loads) loaded")
        XCTAssertEqual(errors + loads, 2000)
        XCTAssertGreaterThan(errors, 500)  // the loop must reach the checks, not only harmless bytes
    }

    func testMutatedSafetensorsHeadersFailCleanly() throws {
        let dir = Fixtures.tempDir()
        for f in ["config.json", "diffusion_pytorch_model.safetensors"] {
            try FileManager.default.copyItem(atPath: Self.bundled + "/" + f, toPath: dir + "/" + f)
        }
        let n = try SafetensorsFile(path: dir + "/diffusion_pytorch_model.safetensors").file.uint64LE(at: 0, what: "")
        let (errors, loads) = try mutate(
            folder: dir, file: "diffusion_pytorch_model.safetensors", headerLength: 8 + Int(n),
            cases: 1000, seed: 17)
        print("safetensors header mutations: \(errors) refused, \(loads) loaded")
        XCTAssertEqual(errors + loads, 1000)
        XCTAssertGreaterThan(errors, 250)
    }
}
