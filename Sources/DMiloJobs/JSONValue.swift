import Foundation

/// A parsed JSON value that keeps booleans, numbers and strings apart (JSONSerialization on Linux blurs
/// `true` and `1`), so the manifest parser can say "`seed` must be an integer" and mean it.
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        // Bool first: JSONDecoder refuses to decode a number as Bool and a boolean as Double.
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// Parses one JSON document; throws `manifest.invalid`-style text on syntax errors.
    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }

    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value as an exact integer, or nil (non-integral, out of range or not a number).
    public var intValue: Int? {
        guard case .number(let d) = self, d.isFinite, d.rounded() == d, abs(d) <= 9.007_199_254_740_992e15 else { return nil }
        return Int(d)
    }

    public var doubleValue: Double? {
        if case .number(let d) = self, d.isFinite { return d }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// Foundation form as JSONSerialization would give it: `NSNumber` (objCType `c` for booleans, `q` for
    /// integers, `d` for reals), `String`, `[Any]`, `[String: Any]`, `NSNull`.
    public var foundationValue: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return NSNumber(value: b)
        case .number(let d): return intValue.map { NSNumber(value: $0) } ?? NSNumber(value: d)
        case .string(let s): return s
        case .array(let a): return a.map(\.foundationValue)
        case .object(let o): return o.mapValues(\.foundationValue)
        }
    }
}
