// `dmilo bench throughput` end to end on a tiny configuration: it simulates jobs, runs the real `dmilod --once` per
// (jobs, threads) configuration and reads the spool afterwards. Checks that every job was drained and the table is
// complete, never how fast (no thresholds).

import Foundation
import XCTest

final class BenchThroughputTests: XCTestCase {
    func testTwoConfigurationsDrainEveryJob() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("bench-throughput-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let repo = BenchMemoryTests.repo
        let (status, text) = try BenchMemoryTests.runDmilo(
            [
                "bench", "throughput", "--model", repo.appendingPathComponent("Models/fashion-mnist-32").path,
                "--image", repo.appendingPathComponent("Tests/Data/fashion-mnist-test/test-00100.png").path,
                "--solver", #"{"method":"dmilo","steps":1,"outer":1,"inner":1,"lr_x":1.0}"#,
                "--jobs", "1,2", "--threads", "1,0", "--count", "2", "--work", work.path,
            ])
        XCTAssertEqual(status, 0, text)

        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.first, "| jobs | threads | jobs/min (median) | s per job | runs (s) |")
        for (jobs, threads) in [(1, "1"), (1, "0"), (2, "1"), (2, "0")] {
            guard let row = lines.first(where: { $0.hasPrefix("| \(jobs) | \(threads) ") }) else {
                return XCTFail("no row for jobs \(jobs) threads \(threads):\n\(text)")
            }
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let rate = Double(cells[2]) ?? -1
            XCTAssertTrue(rate > 0 && rate.isFinite, String(row))
            // The daemon really ran both jobs of this configuration: each has its reconstruction in done/.
            let spool = work.appendingPathComponent("spool-r1-j\(jobs)-t\(threads.prefix(1))")
            for name in ["job0", "job1"] {
                let out = spool.appendingPathComponent("done/\(name)/reconstruction.npy").path
                XCTAssertTrue(FileManager.default.fileExists(atPath: out), out)
            }
        }
    }
}
