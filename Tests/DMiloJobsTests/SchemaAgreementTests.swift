import Foundation
import XCTest
@testable import DMiloJobs

/// schemas/manifest.schema.json and the Swift parser must agree: same key sets, and the same verdict on a set
/// of good and bad manifests. (No Python `jsonschema` on the build box, so a small validator for the keywords
/// the schema uses lives here; it refuses any keyword it does not know, so the schema cannot drift past it.)
final class SchemaAgreementTests: XCTestCase {
    static let schemaURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("schemas/manifest.schema.json")

    func loadSchema() throws -> [String: JSONValue] {
        try XCTUnwrap(JSONValue.parse(Data(contentsOf: Self.schemaURL)).objectValue)
    }

    func keys(_ o: [String: JSONValue]?, _ k: String) -> Set<String> { Set(o?[k]?.objectValue?.keys ?? [:].keys) }

    func testKeySetsMatchTheParser() throws {
        let schema = try loadSchema()
        XCTAssertEqual(schema["additionalProperties"], .bool(false))
        XCTAssertEqual(keys(schema, "properties"), Manifest.keys)
        var required: [JSONValue] = []
        if case .array(let a)? = schema["required"] { required = a }
        XCTAssertEqual(Set(required.compactMap { $0.stringValue }), Manifest.requiredKeys)
        let props = try XCTUnwrap(schema["properties"]?.objectValue)
        let solver = props["solver"]?.objectValue
        XCTAssertEqual(solver?["additionalProperties"], .bool(false))
        XCTAssertEqual(keys(solver, "properties"), SolverSettings.keys)
        func enumSet(_ v: JSONValue?) -> Set<String> {
            guard case .array(let a)? = v?.objectValue?["enum"] else { return [] }
            return Set(a.compactMap(\.stringValue))
        }
        XCTAssertEqual(enumSet(solver?["properties"]?.objectValue?["method"]), SolverSettings.methods)
        XCTAssertEqual(enumSet(props["operator"]?.objectValue?["properties"]?.objectValue?["type"]), Manifest.operatorTypes)
    }

    func testVerdictsAgreeOnGoodAndBadManifests() throws {
        let schema = try loadSchema()
        let base = #""measurement": "y.npy", "operator": {"type": "denoise"}"#
        let cases: [String] = [
            #"{"version": 1, \#(base)}"#,
            #"{"version": 1, "measurement": "calibration/y.npy", "operator": {"type": "hdr", "gain": 2}}"#,
            #"{"version": 1, \#(base), "noise_sigma": 0.05, "seed": 9, "truth": "t.png", "image_shape": [1, 32, 32]}"#,
            #"{"version": 1, \#(base), "solver": {"method": "dmilo", "steps": 3, "lr_z": 0.01, "budget": 50}}"#,
            #"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "mask": "calibration/m.png"}}"#,
            #"{"version": 1, \#(base), "noise_sigma": 0.01, "solver": {"discrepancy_tau": 1.2, "preset": "paper"}}"#,
            #"{"version": 1.0, \#(base)}"#,
            #"{"version": 1, \#(base), "extra": 1}"#,
            #"{"version": 2, \#(base)}"#,
            #"{"version": "1", \#(base)}"#,
            #"{"version": true, \#(base)}"#,
            #"{"\#(base)}"#,
            #"{"version": 1, "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": "y.npy"}"#,
            #"{"version": 1, "measurement": "../y.npy", "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": "/abs/y.npy", "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": ".y.npy", "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": "a/y.npy", "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": "job2.json", "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": "calibration/x.json", "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": "\#(String(repeating: "y", count: 129))", "operator": {"type": "denoise"}}"#,
            #"{"version": 1, "measurement": "y.npy", "operator": {"type": "warp"}}"#,
            #"{"version": 1, "measurement": "y.npy", "operator": {}}"#,
            #"{"version": 1, "measurement": "y.npy", "operator": {"type": "inpainting", "mask": "../m.png"}}"#,
            #"{"version": 1, \#(base), "solver": {"method": "sgd"}}"#,
            #"{"version": 1, \#(base), "solver": {"steps": 0}}"#,
            #"{"version": 1, \#(base), "solver": {"steps": 2.5}}"#,
            #"{"version": 1, \#(base), "solver": {"lambda": -1}}"#,
            #"{"version": 1, \#(base), "solver": {"discrepancy_tau": 0}}"#,
            #"{"version": 1, \#(base), "solver": {"preset": "fast"}}"#,
            #"{"version": 1, \#(base), "solver": {"discrepancy_tau": "1"}}"#,
            #"{"version": 1, \#(base), "solver": {"unknown": 1}}"#,
            #"{"version": 1, \#(base), "noise_sigma": -1}"#,
            #"{"version": 1, \#(base), "seed": -3}"#,
            #"{"version": 1, \#(base), "seed": "3"}"#,
            #"{"version": 1, \#(base), "image_shape": [3, 32, 32, 1]}"#,
            #"{"version": 1, \#(base), "image_shape": [3, 0, 32]}"#,
            #"{"version": 1, \#(base), "truth": null}"#,
            #"[1]"#,
        ]
        var accepted = 0
        for text in cases {
            let data = Data(text.utf8)
            let swift = (try? Manifest.parse(data, file: "case.json")) != nil
            let schemaVerdict: Bool
            if let v = try? JSONValue.parse(data) {
                var errors: [String] = []
                validate(v, against: .object(schema), root: schema, path: "$", errors: &errors)
                schemaVerdict = errors.isEmpty
            } else {
                schemaVerdict = false
            }
            XCTAssertEqual(swift, schemaVerdict, "disagree on \(text.prefix(160))")
            if swift { accepted += 1 }
        }
        XCTAssertEqual(accepted, 8, "the good cases (first seven and calibration/x.json) must stay good")
    }

    // MARK: a small JSON Schema (2020-12 subset) validator

    static let known: Set<String> = ["$schema", "$id", "title", "description", "type", "additionalProperties", "required",
                                     "$defs", "properties", "$ref", "pattern", "minimum", "exclusiveMinimum", "const", "enum", "items",
                                     "minItems", "maxItems"]

    func validate(_ v: JSONValue, against s: JSONValue, root: [String: JSONValue], path: String, errors: inout [String]) {
        guard let s = s.objectValue else { XCTFail("schema at \(path) is not an object"); return }
        for k in s.keys where !Self.known.contains(k) { XCTFail("schema keyword \(k) unsupported by the test validator") }
        if let ref = s["$ref"]?.stringValue {
            let name = String(ref.dropFirst("#/$defs/".count))
            guard ref.hasPrefix("#/$defs/"), let target = root["$defs"]?.objectValue?[name] else { XCTFail("bad $ref \(ref)"); return }
            validate(v, against: target, root: root, path: path, errors: &errors)
        }
        if let t = s["type"]?.stringValue {
            let ok: Bool
            switch (t, v) {
            case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null), ("number", .number): ok = true
            case ("integer", .number): ok = v.intValue != nil
            default: ok = false
            }
            if !ok { errors.append("\(path): not \(t)") ; return }
        }
        if let c = s["const"], c != v { errors.append("\(path): not const") }
        if case .array(let options)? = s["enum"], !options.contains(v) { errors.append("\(path): not in enum") }
        if let p = s["pattern"]?.stringValue, let str = v.stringValue {
            let re = try! NSRegularExpression(pattern: p)
            if re.firstMatch(in: str, range: NSRange(str.startIndex..., in: str)) == nil { errors.append("\(path): pattern") }
        }
        if let m = s["minimum"]?.doubleValue, let d = v.doubleValue, d < m { errors.append("\(path): minimum") }
        if let m = s["exclusiveMinimum"]?.doubleValue, let d = v.doubleValue, d <= m { errors.append("\(path): exclusiveMinimum") }
        if case .array(let items) = v {
            if let n = s["minItems"]?.intValue, items.count < n { errors.append("\(path): minItems") }
            if let n = s["maxItems"]?.intValue, items.count > n { errors.append("\(path): maxItems") }
            if let itemSchema = s["items"] {
                for (i, item) in items.enumerated() { validate(item, against: itemSchema, root: root, path: "\(path)[\(i)]", errors: &errors) }
            }
        }
        if case .object(let o) = v {
            if case .array(let req)? = s["required"] {
                for r in req.compactMap(\.stringValue) where o[r] == nil { errors.append("\(path).\(r): required") }
            }
            let props = s["properties"]?.objectValue ?? [:]
            for (k, child) in o {
                if let ps = props[k] {
                    validate(child, against: ps, root: root, path: "\(path).\(k)", errors: &errors)
                } else if s["additionalProperties"] == .bool(false) {
                    errors.append("\(path).\(k): additional property")
                }
            }
        }
    }
}
