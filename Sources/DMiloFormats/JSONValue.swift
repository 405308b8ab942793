import Foundation

/// A parsed JSON value that keeps booleans, numbers and strings apart (JSONSerialization on Linux blurs
/// `true` and `1`), so a parser can say "`seed` must be an integer" and mean it. Read with ``parse(_:)``.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses one JSON document strictly (see ``JSONSyntaxError`` for what is refused and how it is reported).
    public static func parse(_ data: Data) throws -> JSONValue {
        var reader = JSONReader(Array(data))
        return try reader.document()
    }

    /// Salvage parse of a document ``parse(_:)`` refused (comments skipped, trailing commas and repeated keys
    /// tolerated): only for finding which files a rejected manifest names, so they travel with it.
    public static func parseLeniently(_ data: Data) -> JSONValue? {
        var reader = JSONReader(Array(data), lenient: true)
        return try? reader.document()
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
        guard case .number(let n) = self else { return nil }
        let d = n.double
        guard d.isFinite, d.rounded() == d, abs(d) <= 9.007_199_254_740_992e15 else { return nil }
        return Int(d)
    }

    public var doubleValue: Double? {
        if case .number(let n) = self, n.double.isFinite { return n.double }
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

    /// Foundation form as JSONSerialization would give it: `NSNumber` (objCType `c` for booleans, `q`/`Q` for
    /// integers, `d` for reals), `String`, `[Any]`, `[String: Any]`, `NSNull`.
    public var foundationValue: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return NSNumber(value: b)
        case .number(let n):
            if let i = n.int64 { return NSNumber(value: i) }
            if let u = n.uint64 { return NSNumber(value: u) }
            return intValue.map { NSNumber(value: $0) } ?? NSNumber(value: n.double)
        case .string(let s): return s
        case .array(let a): return a.map(\.foundationValue)
        case .object(let o): return o.mapValues(\.foundationValue)
        }
    }

    /// The inverse of ``foundationValue``: a value built in Swift (`[String: Any]` of `Int`, `Double`, `Bool`,
    /// `String`, arrays, `NSNull`) or given by JSONSerialization. nil for anything JSON cannot hold.
    public init?(foundation v: Any) {
        if let j = v as? JSONValue { self = j; return }
        if v is String { self = .string(v as! String); return }
        if let n = v as? NSNumber {
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "f", "d": self = .number(JSONNumber(double: n.doubleValue, int64: nil, uint64: nil))
            case "Q": self = .number(JSONNumber(n.uint64Value))
            default: self = .number(JSONNumber(n.int64Value))
            }
            return
        }
        if v is NSNull { self = .null; return }
        if let a = v as? [Any] {
            var out: [JSONValue] = []
            for e in a {
                guard let j = JSONValue(foundation: e) else { return nil }
                out.append(j)
            }
            self = .array(out)
            return
        }
        if let o = v as? [String: Any] {
            var out: [String: JSONValue] = [:]
            for (k, e) in o {
                guard let j = JSONValue(foundation: e) else { return nil }
                out[k] = j
            }
            self = .object(out)
            return
        }
        return nil
    }
}

/// A JSON number: its value as a Double, and its exact value when it was written as an integer (no fraction, no
/// exponent) that fits 64 bits — seeds go up to 2⁶⁴ − 1, beyond a Double's 2⁵³.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral
{
    public var double: Double
    public var int64: Int64?
    public var uint64: UInt64?

    public init(double: Double, int64: Int64?, uint64: UInt64?) {
        self.double = double
        self.int64 = int64
        self.uint64 = uint64
    }

    public init(_ i: Int64) { self.init(double: Double(i), int64: i, uint64: i >= 0 ? UInt64(i) : nil) }
    public init(_ u: UInt64) { self.init(double: Double(u), int64: u <= UInt64(Int64.max) ? Int64(u) : nil, uint64: u) }
    public init(integerLiteral value: Int64) { self.init(value) }
    public init(floatLiteral value: Double) { self.init(double: value, int64: nil, uint64: nil) }

    /// Equal values are equal however they were written (`1` and `1.0`, as JSON Schema's `const` compares them).
    public static func == (a: JSONNumber, b: JSONNumber) -> Bool {
        if let x = a.int64, let y = b.int64 { return x == y }
        if let x = a.uint64, let y = b.uint64 { return x == y }
        return a.double == b.double
    }

    public func hash(into h: inout Hasher) { h.combine(double) }

    public var description: String {
        if let i = int64 { return "\(i)" }
        if let u = uint64 { return "\(u)" }
        return "\(double)"
    }
}
