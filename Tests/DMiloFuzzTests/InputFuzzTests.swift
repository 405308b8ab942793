import DMiloFormats
import DMiloImage
import DMiloJobs
import DMiloKernels
import DMiloOperators
import DMiloSolvers
import Foundation
import XCTest

/// Seeded random mutations of valid manifests, NPY and PNG files, fed to the same readers and planners the daemon
/// uses. Every case must end in success or in an error with a documented code (ErrorCodes), never a crash (which
/// would kill this process and fail the run) and never an uncoded error. The case count is
/// `DMILO_FUZZ_CASES` per family (default 5000: seconds in CI); `make fuzz` runs far more.
final class InputFuzzTests: XCTestCase {
    static var cases: Int { ProcessInfo.processInfo.environment["DMILO_FUZZ_CASES"].flatMap { Int($0) } ?? 5000 }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["DMILO_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x5EED }
    static let imageShape = [1, 32, 32]

    /// SplitMix64: the same sequence on every machine for a seed.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    }

    /// Tokens that stress parsers and planners: huge, negative, non-finite, wrong types, deep nesting.
    static let tokens: [String] = [
        "870058519462", "-1", "0", "1e308", "-1e308", "NaN", "Infinity", "1e-320", "9223372036854775807",
        "9223372036854775808", "\"\"", "null", "true", "[]", "{}", "\"../x\"", "\"calibration/m.npy\"",
        "\"\\u0000\"", "\"\\ud800\"", "[[[[[[[[", "}}}}", "\"dmplug\"", "\"compressed_sensing\"",
        "\"inpainting\"", "300", "4294967295", "65536", "2.5", "\"x\\ny\"",
    ]

    static func mutate(_ bytes: [UInt8], _ r: inout RNG) -> [UInt8] {
        var b = bytes
        for _ in 0...r.below(4) {
            guard !b.isEmpty else { b = Array("{}".utf8); continue }
            switch r.below(7) {
            case 0: b[r.below(b.count)] = UInt8(truncatingIfNeeded: r.next())  // byte flip
            case 1: let i = r.below(b.count); b.removeSubrange(i..<min(b.count, i + 1 + r.below(16)))  // delete
            case 2: b.insert(contentsOf: Array(tokens[r.below(tokens.count)].utf8), at: r.below(b.count + 1))
            case 3:  // replace a number
                if let i = b.indices.shuffledFirst(where: { (0x30...0x39).contains(b[$0]) }, &r) {
                    var j = i
                    while j < b.count, (0x30...0x39).contains(b[j]) || b[j] == 0x2E || b[j] == 0x65 || b[j] == 0x2D { j += 1 }
                    b.replaceSubrange(i..<j, with: Array(tokens[r.below(6)].utf8))
                }
            case 4: let i = r.below(b.count); let n = min(b.count - i, 1 + r.below(32)); b.insert(contentsOf: b[i..<(i + n)], at: r.below(b.count + 1))
            case 5: b = Array(b.prefix(r.below(b.count + 1)))  // truncate
            default: b[r.below(b.count)] ^= UInt8(1 << r.below(8))  // bit flip
            }
        }
        return b
    }

    /// Structure-aware mutation: replaces the value after one `"key":` by a hostile token, so most cases stay
    /// JSON and reach the validators and planners behind the parser.
    static func substituteValue(_ bytes: [UInt8], _ r: inout RNG) -> [UInt8] {
        var b = bytes
        for _ in 0...r.below(2) {
            let colons = b.indices.filter { b[$0] == 0x3A }
            guard !colons.isEmpty else { return b }
            var i = colons[r.below(colons.count)] + 1
            while i < b.count, b[i] == 0x20 { i += 1 }
            var j = i
            if j < b.count, b[j] == 0x7B || b[j] == 0x5B { continue }  // keep nested objects (their keys are mutated instead)
            if j < b.count, b[j] == 0x22 { j += 1; while j < b.count, b[j] != 0x22 { j += 1 }; j = min(b.count, j + 1) } else { while j < b.count, b[j] != 0x2C, b[j] != 0x7D, b[j] != 0x5D { j += 1 } }
            b.replaceSubrange(i..<j, with: Array(tokens[r.below(tokens.count)].utf8))
        }
        return b
    }

    /// Asserts `body` succeeds or throws a coded error with a documented code.
    func expectClean(_ what: String, _ input: [UInt8], _ body: () throws -> Void) {
        do { try body() } catch let e as CodedError {
            XCTAssertTrue(ErrorCodes.all.contains(e.code), "\(what): undocumented code \(e.code) for input \(Data(input).base64EncodedString())")
        } catch {
            XCTFail("\(what): uncoded error \(error) for input \(Data(input).base64EncodedString())")
        }
    }

    static let manifests: [String] = [
        #"{"version": 1, "measurement": "y.npy", "operator": {"type": "denoise"}, "noise_sigma": 0.05, "seed": 3}"#,
        #"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "missing_fraction": 0.7, "mask_seed": 4}, "solver": {"method": "dmilo", "steps": 3, "outer": 2, "inner": 5, "budget": 100}}"#,
        #"{"version": 1, "measurement": "y.png", "operator": {"type": "super_resolution", "factor": 4}, "solver": {"method": "dmplug", "steps": 5, "budget": 200}, "truth": "t.png"}"#,
        #"{"version": 1, "measurement": "y.npy", "operator": {"type": "gaussian_blur", "size": 9, "sigma": 3.0}, "solver": {"method": "dps", "inner": 50}}"#,
        #"{"version": 1, "measurement": "y.npy", "operator": {"type": "compressed_sensing", "ratio": 0.1, "matrix_seed": 1}, "image_shape": [1, 32, 32]}"#,
        #"{"version": 1, "measurement": "y.npy", "operator": {"type": "motion_blur", "size": 9, "intensity": 0.5, "kernel_seed": 2}, "solver": {"method": "dmilo-pgd", "lr_z": 0.01, "lambda": 0.1, "discrepancy_tau": 1.1}}"#,
    ]

    /// Manifest → settings → solver parameters → input limits → memory plan → operator: the daemon's whole
    /// planning path on mutated manifests, before any model runs.
    func testMutatedManifests() {
        var r = RNG(state: Self.seed)
        let one = Tensor(shape: [32, 32], values: [Float](repeating: 1, count: 1024))
        var parsed = 0, planned = 0
        for i in 0..<Self.cases {
            let base = Array(Self.manifests[i % Self.manifests.count].utf8)
            let input = r.below(3) == 0 ? Self.mutate(base, &r) : Self.substituteValue(base, &r)
            expectClean("manifest case \(i)", input) {
                let m = try Manifest.parse(Data(input), file: "fuzz.json")
                parsed += 1
                let job = ClaimedJob(
                    name: "fuzz", manifest: m, jobDirectory: URL(fileURLWithPath: "/nonexistent"),
                    calibrationDirectory: URL(fileURLWithPath: "/nonexistent"),
                    settings: JobSettings(solver: m.solver ?? SolverSettings(), maxBudget: 2000, memoryBudgetMB: 2048))
                var p = try ReconstructionRunner.parameters(for: job, operatorType: m.operatorType)
                try InputLimits.check(p, trainSteps: 1000, file: "fuzz.json")
                let plan = try MemoryPlan.plan(p, stepBytes: 20 << 20, residentBytes: 10 << 20, budgetBytes: 2048 << 20)
                p.layerSpan = plan.layerSpan
                planned += 1
                _ = try OperatorFactory.make(spec: m.operatorJSONObject, imageShape: m.imageShape ?? Self.imageShape) { _, _ in one }
            }
        }
        // The mutations must leave enough cases valid to reach the planners, or the test only fuzzes the lexer.
        XCTAssertGreaterThan(parsed, Self.cases / 10, "parsed \(parsed) of \(Self.cases)")
        XCTAssertGreaterThan(planned, Self.cases / 20, "planned \(planned) of \(Self.cases)")
    }

    func validNPY() -> [UInt8] {
        let v = (0..<1024).map { Float($0) / 1024 - 0.5 }
        return v.withUnsafeBufferPointer { NPY.encode(shape: [1, 32, 32], values: $0) }
    }

    func testMutatedNPY() {
        var r = RNG(state: Self.seed ^ 0x4E50)
        let base = validNPY()
        var decoded = 0
        for i in 0..<Self.cases {
            // Most mutations go to the 128-byte header, where the parser lives.
            var input = base
            let header = Self.mutate(Array(base.prefix(128)), &r)
            input.replaceSubrange(0..<128, with: header)
            if r.below(4) == 0 { input = Self.mutate(input, &r) }
            expectClean("npy case \(i)", input) {
                let m = try JobInputs.measurement(Data(input), name: "y.npy", limits: InputLimits.png(forImage: Self.imageShape))
                decoded += 1
                _ = try JobInputs.conform(m.y, to: Self.imageShape, name: "y.npy", field: "measurement")
            }
        }
        XCTAssertGreaterThan(decoded, Self.cases / 20, "decoded \(decoded) of \(Self.cases)")
    }

    func validPNGs() throws -> [[UInt8]] {
        let gray = Tensor(shape: [1, 32, 32], values: (0..<1024).map { Float($0 % 97) / 48 - 1 })
        let rgb = Tensor(shape: [3, 16, 16], values: (0..<768).map { Float($0 % 31) / 15 - 1 })
        return [
            try PNGImage(modelUnits: gray, bitDepth: 8).encoded(), try PNGImage(modelUnits: gray, bitDepth: 16).encoded(),
            try PNGImage(modelUnits: rgb, bitDepth: 8).encoded(),
        ]
    }

    func testMutatedPNG() throws {
        var r = RNG(state: Self.seed ^ 0x504E47)
        let bases = try validPNGs()
        for i in 0..<Self.cases {
            let input = Self.mutate(bases[i % bases.count], &r)
            expectClean("png case \(i)", input) {
                let m = try JobInputs.measurement(Data(input), name: "y.png", limits: InputLimits.png(forImage: Self.imageShape))
                _ = try JobInputs.operatorArray(Data(input), name: "m.png", field: "operator.mask", limits: InputLimits.png(forImage: Self.imageShape))
                _ = try JobInputs.conform(m.y, to: Self.imageShape, name: "y.png", field: "measurement")
            }
        }
    }
}

extension Range where Bound == Int {
    /// The first index at or after a random start that satisfies `pred` (wrapping), or nil.
    func shuffledFirst(where pred: (Int) -> Bool, _ r: inout InputFuzzTests.RNG) -> Int? {
        guard !isEmpty else { return nil }
        let start = lowerBound + r.below(count)
        for k in 0..<count {
            let i = lowerBound + (start - lowerBound + k) % count
            if pred(i) { return i }
        }
        return nil
    }
}
