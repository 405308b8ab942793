// `dmilo bench memory` end to end: it spawns one `dmilo reconstruct` child per (method, N) and reads each child's
// peak RSS (its metrics.json, and wait4's ru_maxrss). Checks that the measurement works, not how much memory a method
// needs (no thresholds).

import Foundation
import XCTest

final class BenchMemoryTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The dmilo executable built beside the test bundle (`swift test` builds every product).
    static func dmiloBinary() throws -> String {
        var candidates: [URL] = []
        for b in Bundle.allBundles { candidates.append(b.bundleURL.deletingLastPathComponent()) }
        if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent()) }
        for dir in candidates {
            let p = dir.appendingPathComponent("dmilo").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw XCTSkip("dmilo binary not found beside the tests")
    }

    /// Runs the built `dmilo` with `args`; returns its exit status and standard output.
    static func runDmilo(_ args: [String]) throws -> (status: Int32, stdout: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try dmiloBinary())
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func testChildProcessPeakRSSForTwoStepCounts() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bench-memory-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let (status, text) = try Self.runDmilo(
            [
                "bench", "memory", "--model", Self.repo.appendingPathComponent("Models/fashion-mnist-32").path,
                "--image", Self.repo.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00100.png").path,
                "--steps", "1,2", "--inner", "1", "--repeats", "1", "--methods", "dmilo,dmplug", "--work", work.path,
            ])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("whole child process (wait4 ru_maxrss"), text)

        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.first, "| N | dmilo | dmplug |")
        for n in [1, 2] {
            guard let row = lines.first(where: { $0.hasPrefix("| \(n) |") }) else { return XCTFail("no row for N = \(n):\n\(text)") }
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }.compactMap(Double.init)
            XCTAssertEqual(cells.count, 3, String(row))  // N, dmilo, dmplug
            // A child that loaded the 10 MB model and ran a VJP is well above 10 MiB; a parent's or a zero reading is not.
            for mib in cells.dropFirst() { XCTAssertTrue(mib > 10 && mib < 100_000, String(row)) }
        }
        // Each child really ran its job: its reconstruction is there.
        for name in ["dmilo-n1", "dmilo-n2", "dmplug-n1", "dmplug-n2"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: work.appendingPathComponent("out-\(name)/reconstruction.npy").path), name)
        }
    }
}
