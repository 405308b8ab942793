import DMiloFormats
import Foundation
import XCTest

/// The strict reader against Foundation's JSONSerialization (a reader we did not write) on valid documents, and
/// against RFC 8259 on what it must refuse, with the line and column it reports.
final class JSONReaderTests: XCTestCase {
    func testValidDocumentsReadAsFoundationReadsThem() throws {
        let docs = [
            #"{"a": [1, -2, 3.5, 1e3, -0.25E-2, 0], "b": {"c": null, "d": true, "e": false}, "f": ""}"#,
            #"["\u00e9\u4e2d\ud83d\ude00", "tab\tnew\nline \"q\" \\ \/", "héllo wörld 中文"]"#,
            " \r\n\t{ \"x\" : [ ] , \"y\" : { } } \n",
            #"{"seed": 9007199254740993, "big": 18446744073709551615, "neg": -9223372036854775808}"#,
            "123", "\"s\"", "null",
        ]
        for doc in docs {
            let ours = try JSONValue.parse(Data(doc.utf8))
            let theirs = try JSONSerialization.jsonObject(with: Data(doc.utf8), options: .fragmentsAllowed)
            XCTAssertEqual(ours.foundationValue as? NSObject, theirs as? NSObject, doc)
        }
    }

    func testIntegersStayExactBeyondDoublePrecision() throws {
        let v = try JSONValue.parse(Data(#"{"s": 18446744073709551615, "t": 9007199254740993, "r": 4.0}"#.utf8))
        guard case .number(let s)? = v.objectValue?["s"], case .number(let t)? = v.objectValue?["t"],
            case .number(let r)? = v.objectValue?["r"]
        else { return XCTFail("numbers expected") }
        XCTAssertEqual(s.uint64, UInt64.max)
        XCTAssertNil(s.int64)
        XCTAssertEqual(t.int64, 9_007_199_254_740_993)
        XCTAssertNil(r.int64, "4.0 is written as a real")
        XCTAssertEqual(r.double, 4)
    }

    /// (document, line, column, words the reason must contain)
    func testRefusalsNameLineAndColumn() {
        let cases: [(String, Int, Int, String)] = [
            ("{\"a\": 1,}", 1, 9, "trailing comma"),
            ("[1, 2,\n ]", 2, 2, "trailing comma"),
            ("{\"a\": 1,\n  \"a\": 2}", 2, 3, "duplicate key \"a\""),
            ("{\"a\": 1 // note\n}", 1, 9, "comments"),
            ("/* c */ {}", 1, 1, "comments"),
            ("{\"a\": [1, /* c */ 2]}", 1, 11, "comments"),
            ("{\"a\": 01}", 1, 7, "leading zeros"),
            ("{\"a\": NaN}", 1, 7, "expected a value"),
            ("{\"a\": 1} x", 1, 10, "after the end"),
            ("{\"a\": \"x\ny\"}", 1, 9, "control character"),
            ("[\"\\ud800\"]", 1, 3, "unpaired surrogate"),
            ("{'a': 1}", 1, 2, "double quotes"),
            ("{\"é\": 1,,}", 1, 9, "expected a key"),
            ("", 1, 1, "end of input"),
        ]
        for (doc, line, column, words) in cases {
            XCTAssertThrowsError(try JSONValue.parse(Data(doc.utf8)), doc) { e in
                guard let e = e as? JSONSyntaxError else { return XCTFail("\(doc): \(e)") }
                XCTAssertEqual(e.line, line, "\(doc): \(e)")
                XCTAssertEqual(e.column, column, "\(doc): \(e)")
                XCTAssertTrue(e.reason.contains(words), "\(doc): \(e)")
            }
        }
    }

    func testNonUTF8IsRefusedWhereItStands() {
        let bad: [[UInt8]] = [
            Array("{\"a\":\n \"x".utf8) + [0xFF] + Array("\"}".utf8),  // invalid byte
            Array("{\"a\":\n \"x".utf8) + [0xC0, 0xAF] + Array("\"}".utf8),  // overlong '/'
            Array("{\"a\":\n \"x".utf8) + [0xED, 0xA0, 0x80] + Array("\"}".utf8),  // UTF-8-encoded surrogate
        ]
        for bytes in bad {
            XCTAssertThrowsError(try JSONValue.parse(Data(bytes))) { e in
                guard let e = e as? JSONSyntaxError else { return XCTFail("\(e)") }
                XCTAssertEqual(e.line, 2, "\(e)")
                XCTAssertEqual(e.column, 4, "\(e)")
                XCTAssertTrue(e.reason.contains("not UTF-8"), "\(e)")
            }
        }
        // Latin-1 where JSONSerialization would guess another encoding
        XCTAssertThrowsError(try JSONValue.parse(Data([0x22, 0xE9, 0x22])))
    }

    func testDeepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONValue.parse(Data(deep.utf8))) { e in
            XCTAssertTrue("\(e)".contains("nesting"), "\(e)")
        }
        let ok = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        XCTAssertNoThrow(try JSONValue.parse(Data(ok.utf8)))
    }
}
