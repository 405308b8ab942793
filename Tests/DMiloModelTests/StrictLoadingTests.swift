import DMiloFormats
import DMiloKernels
import Foundation
import XCTest

@testable import DMiloModel

/// Loading refuses anything that does not match the config exactly, naming the offending file/key/tensors.
final class StrictLoadingTests: XCTestCase {
    /// Copies a fixture folder and rewrites its weights through `edit` (name -> (shape, values)) and config via `cfg`.
    func variant(
        _ name: String, edit: (inout [String: ([Int], [Float])]) -> Void = { _ in },
        cfg: (inout [String: Any]) -> Void = { _ in }
    ) throws -> String {
        let src = Fixtures.folder(name)
        let dst = Fixtures.tempDir()
        let f = try SafetensorsFile(path: src + "/diffusion_pytorch_model.safetensors")
        var tensors: [String: ([Int], [Float])] = [:]
        for n in f.names {
            let t = f.tensors[n]!
            var v = [Float](repeating: 0, count: t.count)
            try v.withUnsafeMutableBufferPointer { try f.loadF32(n, into: $0) }
            tensors[n] = (t.shape, v)
        }
        edit(&tensors)
        try SafetensorsWriter.write(
            tensors.map { .init(name: $0.key, shape: $0.value.0, values: $0.value.1) },
            to: dst + "/diffusion_pytorch_model.safetensors")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src + "/config.json"))) as! [String: Any]
        cfg(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dst + "/config.json"))
        return dst
    }

    func assertLoadError(_ path: String, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try UNet2DModel.load(path: path), file: file, line: line) { e in
            let s = "\(e)"
            for p in parts { XCTAssertTrue(s.contains(p), "missing \"\(p)\" in: \(s)", file: file, line: line) }
        }
    }

    func testUnmodifiedCopyLoads() throws {
        XCTAssertNoThrow(try UNet2DModel.load(path: try variant("legacy_attention")))
    }

    func testMissingTensorsAreListed() throws {
        let p = try variant("legacy_attention") {
            $0["conv_out.bias"] = nil
            $0["mid_block.resnets.1.norm2.weight"] = nil
        }
        assertLoadError(p, ["missing tensors", "conv_out.bias", "mid_block.resnets.1.norm2.weight"])
    }

    func testUnexpectedTensor() throws {
        let p = try variant("legacy_attention") { $0["extra.weight"] = ([1], [0]) }
        assertLoadError(p, ["unexpected tensors", "extra.weight"])
    }

    func testWrongShape() throws {
        let p = try variant("legacy_attention") { $0["conv_in.bias"] = ([15], [Float](repeating: 0, count: 15)) }
        assertLoadError(p, ["wrong shapes", "conv_in.bias", "[15]", "[16]"])
    }

    func testBothAttentionNamingsConflict() throws {
        let p = try variant("legacy_attention") {
            $0["mid_block.attentions.0.to_q.weight"] = $0["mid_block.attentions.0.query.weight"]
        }
        assertLoadError(p, ["mid_block.attentions.0"])
    }

    func testUnknownConfigValues() throws {
        let cases: [(String, Any, String)] = [
            ("resnet_time_scale_shift", "spatial", "resnet_time_scale_shift"),
            ("downsample_type", "resnet", "downsample_type"),
            ("act_fn", "gelu", "act_fn"),
            ("down_block_types", ["CrossAttnDownBlock2D", "DownBlock2D"], "down_block_types"),
            ("time_embedding_type", "learned", "time_embedding_type"),
            ("class_embed_type", "timestep", "class_embed_type"),
            ("layers_per_block", "two", "layers_per_block"),
            ("sample_sise", 16, "sample_sise"),
        ]
        for (key, value, expect) in cases {
            let p = try variant("legacy_attention", cfg: { $0[key] = value })
            assertLoadError(p, ["config.json", expect])
        }
    }

    func testIgnoredUnderscoreKeys() throws {
        let p = try variant(
            "legacy_attention",
            cfg: {
                $0["_name_or_path"] = "x"; $0["_whatever"] = 1
            })
        XCTAssertNoThrow(try UNet2DModel.load(path: p))
    }

    func testTruncatedSafetensors() throws {
        let p = try variant("legacy_attention")
        let w = p + "/diffusion_pytorch_model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: w))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: w))
        assertLoadError(p, [w, "truncated"])
    }

    func testMissingFolderAndConfig() throws {
        assertLoadError("/nonexistent/model", ["/nonexistent/model"])
        let p = try variant("legacy_attention")
        try FileManager.default.removeItem(atPath: p + "/config.json")
        assertLoadError(p, ["config.json"])
    }

    func testModelSafetensorsNameAndFilePath() throws {
        let p = try variant("legacy_attention")
        try FileManager.default.moveItem(atPath: p + "/diffusion_pytorch_model.safetensors", toPath: p + "/model.safetensors")
        XCTAssertNoThrow(try UNet2DModel.load(path: p))
        XCTAssertNoThrow(try UNet2DModel.load(path: p + "/model.safetensors"))
    }
}

final class ConfigTests: XCTestCase {
    func testParsesDDPMCifarConfig() throws {
        let json = """
            {"_class_name":"UNet2DModel","_diffusers_version":"0.0.4","act_fn":"silu","attention_head_dim":null,
             "block_out_channels":[128,256,256,256],"center_input_sample":false,
             "down_block_types":["DownBlock2D","AttnDownBlock2D","DownBlock2D","DownBlock2D"],"downsample_padding":0,
             "flip_sin_to_cos":false,"freq_shift":1,"in_channels":3,"layers_per_block":2,"mid_block_scale_factor":1,
             "norm_eps":1e-06,"norm_num_groups":32,"out_channels":3,"sample_size":32,"time_embedding_type":"positional",
             "up_block_types":["UpBlock2D","AttnUpBlock2D","UpBlock2D","UpBlock2D"]}
            """
        let c = try UNetConfig.parse(Data(json.utf8), file: "config.json")
        XCTAssertEqual(c.blockOutChannels, [128, 256, 256, 256])
        XCTAssertEqual(c.downsamplePadding, 0)
        XCTAssertNil(c.attentionHeadDim)
        XCTAssertFalse(c.flipSinToCos)
        XCTAssertEqual(c.freqShift, 1)
        XCTAssertEqual(c.timeEmbedDim, 512)
        XCTAssertEqual(c.upBlockTypes[1], .AttnUpBlock2D)
        XCTAssertEqual(c.midAttentionGroups, 32)
    }

    func testCrossKeyValidation() {
        let base: [String: Any] = [
            "block_out_channels": [32, 64], "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
            "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 8, "attention_head_dim": 8,
        ]
        func parse(_ d: [String: Any]) throws -> UNetConfig {
            try UNetConfig.parse(try JSONSerialization.data(withJSONObject: d), file: "c.json")
        }
        XCTAssertNoThrow(try parse(base))
        var d = base; d["norm_num_groups"] = 12
        XCTAssertThrowsError(try parse(d)) { XCTAssertTrue("\($0)".contains("norm_num_groups")) }
        d = base; d["attention_head_dim"] = 24
        XCTAssertThrowsError(try parse(d)) { XCTAssertTrue("\($0)".contains("attention_head_dim")) }
        d = base; d["up_block_types"] = ["UpBlock2D"]
        XCTAssertThrowsError(try parse(d)) { XCTAssertTrue("\($0)".contains("up_block_types")) }
        d = base; d["down_block_types"] = ["UpBlock2D", "DownBlock2D"]
        XCTAssertThrowsError(try parse(d)) { XCTAssertTrue("\($0)".contains("down_block_types")) }
    }
}
