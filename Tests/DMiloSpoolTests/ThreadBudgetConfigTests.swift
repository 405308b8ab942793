// `threads` and `jobs` in the daemon config: 0 threads means the online cores shared by the jobs running at once,
// and every job's settings carry that per-job figure (each job runs in its own budget, Threading.withBudget).

import DMiloJobs
import DMiloKernels
import Foundation
import XCTest

@testable import DMiloSpool

final class ThreadBudgetConfigTests: XCTestCase {
    func testZeroThreadsSharesTheCoresBetweenJobs() throws {
        let cores = Threading.onlineCores()
        for (jobs, threads, expected) in [(1, 0, cores), (2, 0, max(1, cores / 2)), (cores + 1, 0, 1), (2, 3, 3), (1, 1, 1)] {
            let c = try DaemonConfig.parse(Data(#"{"jobs": \#(jobs), "threads": \#(threads)}"#.utf8), file: "c.json")
            XCTAssertEqual(c.threadsPerJob, expected, "jobs \(jobs) threads \(threads)")
            let m = try Manifest.parse(
                Data(#"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "box": [0, 0, 4, 4]}}"#.utf8),
                file: "j.json")
            XCTAssertEqual(c.jobSettings(for: m).threads, expected)
        }
    }

    /// The shipped config keeps the measured defaults: automatic threads, two jobs at once.
    func testShippedConfigUsesAutomaticThreads() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let c = try DaemonConfig.load(path: repo.appendingPathComponent("Systemd/dmilod.json").path)
        XCTAssertEqual(c.threads, 0)
        XCTAssertEqual(c.jobs, 2)
    }
}
