// `--version` of the three executables (issue: `dmilo-quantize --version` used to fail with a missing argument).
// The package test (packaging/deb/test-deb.sh) checks the same on the packaged, statically linked binaries.

import Foundation
import XCTest

final class VersionTests: XCTestCase {
    /// Runs `exe --version`; returns exit status and stdout.
    func version(_ name: String) throws -> (Int32, String) {
        let dir = (try BenchMemoryTests.dmiloBinary() as NSString).deletingLastPathComponent
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "\(dir)/\(name)")
        p.arguments = ["--version"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func testEveryBinaryPrintsSemverCommitAndDate() throws {
        // The semantic version as the Makefile reads it (the one place it is written).
        let source = try String(
            contentsOf: BenchMemoryTests.repo.appendingPathComponent("Sources/CDMiloVersion/version.c"),
            encoding: .utf8)
        let semver = try XCTUnwrap(
            source.split(separator: "\n").first { $0.hasPrefix("#define DMILO_SEMVER ") }?
                .split(separator: "\"").dropFirst().first.map(String.init))
        XCTAssertNotNil(semver.wholeMatch(of: /\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?/), semver)
        for name in ["dmilo", "dmilod", "dmilo-quantize"] {
            let (status, text) = try version(name)
            XCTAssertEqual(status, 0, "\(name) --version: \(text)")
            let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(line.hasPrefix("\(name) \(semver) (commit "), line)
            XCTAssertNotNil(line.firstMatch(of: /\(commit [0-9a-f]{7,}(-dirty)?|\(commit unknown/), line)
            XCTAssertTrue(line.contains(", built ") && line.hasSuffix(")"), line)
        }
    }
}
