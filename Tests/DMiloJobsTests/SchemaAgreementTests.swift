import DMiloModel
import DMiloOperators
import Foundation
import XCTest

@testable import DMiloJobs

/// schemas/manifest.schema.json and the daemon's parser must agree: the same key sets, and the same verdict on a
/// committed corpus of good and bad manifests (Fixtures/manifest-corpus: every operator, typos, wrong types,
/// out-of-range values, JSON syntax). The schema's verdicts come from Python's `jsonschema`, run by
/// Tools/schema_verdicts.py and committed as Fixtures/manifest-verdicts.json, so this test needs no Python.
final class SchemaAgreementTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let schemaURL = root.appendingPathComponent("schemas/manifest.schema.json")
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let regenerate = "regenerate with `python Tools/schema_verdicts.py` (jsonschema from Tools/requirements.txt)"

    func loadSchema() throws -> [String: JSONValue] {
        try XCTUnwrap(JSONValue.parse(Data(contentsOf: Self.schemaURL)).objectValue)
    }

    func keys(_ o: [String: JSONValue]?, _ k: String) -> Set<String> { Set(o?[k]?.objectValue?.keys ?? [:].keys) }

    func strings(_ v: JSONValue?) -> [String] {
        guard case .array(let a)? = v else { return [] }
        return a.compactMap(\.stringValue)
    }

    func testKeySetsMatchTheParser() throws {
        let schema = try loadSchema()
        XCTAssertEqual(schema["additionalProperties"], .bool(false))
        XCTAssertEqual(keys(schema, "properties"), Manifest.keys)
        XCTAssertEqual(Set(strings(schema["required"])), Manifest.requiredKeys)
        let props = try XCTUnwrap(schema["properties"]?.objectValue)
        let solver = props["solver"]?.objectValue
        XCTAssertEqual(solver?["additionalProperties"], .bool(false))
        XCTAssertEqual(keys(solver, "properties"), SolverSettings.keys)
        let methods = Set(strings(solver?["properties"]?.objectValue?["method"]?.objectValue?["enum"]))
        XCTAssertEqual(methods, SolverSettings.methods)
        XCTAssertEqual(Set(strings(props["color"]?.objectValue?["enum"])), Set(ColorConversion.allCases.map(\.rawValue)))

        // operator: one closed subschema per type, listing exactly the keys the operator parser allows.
        let op = try XCTUnwrap(props["operator"]?.objectValue)
        XCTAssertEqual(Set(strings(op["properties"]?.objectValue?["type"]?.objectValue?["enum"])), Manifest.operatorTypes)
        guard case .array(let variants)? = op["oneOf"] else { return XCTFail("operator has no oneOf") }
        var types: [String] = []
        for v in variants.compactMap(\.objectValue) {
            let type = try XCTUnwrap(v["properties"]?.objectValue?["type"]?.objectValue?["const"]?.stringValue)
            types.append(type)
            XCTAssertEqual(v["additionalProperties"], .bool(false), type)
            // Every listed key is accepted by the parser for this type (an unlisted one is refused by the corpus).
            for key in keys(v, "properties") where key != "type" {
                let probe = #"{"type": "\#(type)", "\#(key)": null}"#
                XCTAssertThrowsError(try OperatorSpec(json: JSONValue.parse(Data(probe.utf8)))) { e in
                    XCTAssertFalse("\(e)".contains("unknown field"), "schema key operator.\(key) for \(type): \(e)")
                }
            }
        }
        XCTAssertEqual(types.sorted(), Manifest.operatorTypes.sorted())
    }

    struct Case { var file: String; var sha256: String; var schemaValid: Bool; var why: String }

    func testVerdictsAgreeWithPythonJSONSchema() throws {
        let fixture = try XCTUnwrap(JSONValue.parse(Data(contentsOf: Self.fixtures.appendingPathComponent("manifest-verdicts.json"))).objectValue)
        XCTAssertEqual(
            fixture["schema_sha256"]?.stringValue, try SHA256.hex(ofFile: Self.schemaURL.path),
            "the schema changed since the verdicts were written: \(Self.regenerate)")
        guard case .array(let rows)? = fixture["cases"] else { return XCTFail("no cases") }
        let cases = rows.compactMap(\.objectValue).map {
            Case(
                file: $0["file"]?.stringValue ?? "", sha256: $0["sha256"]?.stringValue ?? "",
                schemaValid: $0["schema_valid"] == .bool(true), why: $0["why"]?.stringValue ?? "")
        }
        var differences: [String: Bool] = [:]
        if case .array(let d)? = fixture["differences"] {
            for o in d.compactMap(\.objectValue) {
                let reason = o["reason"]?.stringValue ?? ""
                XCTAssertFalse(reason.isEmpty, "a listed difference needs its reason")
                differences[o["file"]?.stringValue ?? ""] = o["dmilo_valid"] == .bool(true)
            }
        }
        let corpus = Self.fixtures.appendingPathComponent("manifest-corpus")
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".json") }
        XCTAssertEqual(Set(onDisk), Set(cases.map(\.file)), "corpus and verdicts differ: \(Self.regenerate)")
        XCTAssertGreaterThanOrEqual(cases.count, 40)

        var accepted = 0, refused = 0
        for c in cases {
            let data = try Data(contentsOf: corpus.appendingPathComponent(c.file))
            XCTAssertEqual(
                try SHA256.hex(ofFile: corpus.appendingPathComponent(c.file).path), c.sha256,
                "\(c.file) changed: \(Self.regenerate)")
            let expected = differences[c.file] ?? c.schemaValid
            var refusal = ""
            do { _ = try Manifest.parse(data, file: c.file) } catch { refusal = "\(error)" }
            XCTAssertEqual(
                refusal.isEmpty, expected,
                "\(c.file): dmilo \(refusal.isEmpty ? "accepts" : "refuses (\(refusal))"), "
                    + "jsonschema \(c.schemaValid ? "accepts" : "refuses (\(c.why))")"
                    + (differences[c.file] != nil ? " (listed difference)" : ""))
            if refusal.isEmpty { accepted += 1 } else { refused += 1 }
        }
        XCTAssertGreaterThanOrEqual(accepted, 15, "the corpus must keep its good cases")
        XCTAssertGreaterThanOrEqual(refused, 40)
    }
}
