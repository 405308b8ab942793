import DMiloJobs
import Foundation
import XCTest

/// The documented error codes are one list (ErrorCodes.documented), the same as docs/error-codes.md, and no source
/// file throws a code outside it (the daemon would publish such a code as internal.error).
final class ErrorCodeTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testDocumentationListsExactlyTheCodes() throws {
        let doc = try String(contentsOf: Self.repo.appendingPathComponent("docs/error-codes.md"), encoding: .utf8)
        var documented: [String] = []
        for line in doc.split(separator: "\n") where line.hasPrefix("| `") {
            documented.append(String(line.dropFirst(3).prefix { $0 != "`" }))
        }
        XCTAssertEqual(documented, ErrorCodes.documented.map(\.code))
        XCTAssertEqual(Set(documented).count, documented.count, "duplicate code")
        for required in [
            "manifest.invalid", "file.missing", "file.unreadable", "operator.unknown", "budget.exceeded",
            "memory.budget", "measurement.shape", "job.crashed", "internal.error", "result.nonfinite",
        ] {
            XCTAssertTrue(ErrorCodes.all.contains(required), required)
        }
    }

    func testNoSourceThrowsAnUndocumentedCode() throws {
        let sources = Self.repo.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        XCTAssertGreaterThan(files.count, 50)
        // `code: "a.b"` literals and the error types' code tables (`return "a.b"` in PNGError.code).
        let pattern = try NSRegularExpression(pattern: #"(?:code: |code == |return )"([a-z_]+\.[a-z_]+)""#)
        var found: [String: String] = [:]
        for f in files {
            let text = try String(contentsOf: f, encoding: .utf8)
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let code = String(text[Range(m.range(at: 1), in: text)!])
                found[code] = f.lastPathComponent
            }
        }
        XCTAssertTrue(found.keys.contains("memory.budget"), "the scan finds codes: \(found)")
        let internalOnly: Set<String> = [ResultChecks.diskFull]  // never published: the job stays queued
        for (code, file) in found.sorted(by: { $0.key < $1.key }) where !internalOnly.contains(code) {
            // Image-layer write errors (`file.unwritable`) are wrapped into output.unwritable before they can be published.
            if code == "file.unwritable" { continue }
            XCTAssertTrue(ErrorCodes.all.contains(code), "\(file) throws undocumented code \(code)")
        }
    }

    func testUndocumentedCodesArePublishedAsInternalError() {
        let e = ErrorCodes.publishable(JobError(code: "truth.mismatch", message: "x", field: "truth"))
        XCTAssertEqual(e.code, "internal.error")
        XCTAssertTrue(e.message.contains("truth.mismatch"))
        XCTAssertEqual(ErrorCodes.publishable(JobError(code: "file.missing", message: "m")).code, "file.missing")
    }
}
