// `dmilo bench quality` sharding: two shards (--first 0 / --first 1) append records to one file, a re-run of a shard
// replaces its records instead of counting twice, and --merge prints one row per task × method over all images.
// Uses the baseline (no UNet evaluations), so it is quick; checks bookkeeping, not quality.

import Foundation
import XCTest

final class BenchQualityShardTests: XCTestCase {
    func run(_ args: [String]) throws -> String {
        let (status, text) = try BenchMemoryTests.runDmilo(args)
        XCTAssertEqual(status, 0, "\(args): \(text)")
        return text
    }

    func testShardsAppendAndMergeIntoOneTable() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-quality-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let records = dir.appendingPathComponent("r.jsonl").path
        let common = [
            "bench", "quality", "--model", BenchMemoryTests.repo.appendingPathComponent("Models/fashion-mnist-32").path,
            "--images", BenchMemoryTests.repo.appendingPathComponent("Tests/Data/fashion-mnist-test").path,
            "--count", "1", "--tasks", "sr4,inpainting70", "--methods", "baseline", "--records", records,
        ]
        let first = try run(common + ["--first", "0"])
        XCTAssertTrue(first.contains("| sr4 | baseline | 1 |"), first)
        _ = try run(common + ["--first", "1"])
        _ = try run(common + ["--first", "1"])  // a re-run shard: its records replace the earlier ones in the merge
        let lines = try String(contentsOfFile: records, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 6)
        let merged = try run(["bench", "quality", "--merge", records])
        let rows = merged.split(separator: "\n").filter { $0.hasPrefix("| sr4") || $0.hasPrefix("| inpainting70") }
        XCTAssertEqual(rows.count, 2, merged)
        // benchmark order (sr4 before inpainting70), two images each
        XCTAssertTrue(rows[0].hasPrefix("| sr4 | baseline | 2 |"), merged)
        XCTAssertTrue(rows[1].hasPrefix("| inpainting70 | baseline | 2 |"), merged)
        XCTAssertTrue(merged.contains("2 images, 6 jobs from 1 record files"), merged)
    }
}
