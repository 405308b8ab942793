import Foundation

/// Strict, typed reads of one JSON object (as produced by `JSONSerialization`, or built in Swift from native
/// values), with errors naming the manifest field (`<prefix>.<key>`). JSON booleans are never numbers, and an
/// integer field accepts only integral numbers.
struct JSONFields {
    let object: [String: Any]
    let prefix: String

    init(_ value: Any, prefix: String) throws {
        guard let object = value as? [String: Any] else {
            throw OperatorError.invalid(prefix, "\(prefix) must be a JSON object, got \(JSONFields.describe(value))")
        }
        self.object = object
        self.prefix = prefix
    }

    func path(_ key: String) -> String { "\(prefix).\(key)" }
    func has(_ key: String) -> Bool { object[key] != nil }

    /// Fails on the first key (sorted, for a stable message) that is not in `allowed`.
    func rejectUnknown(_ allowed: [String], context: String) throws {
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw OperatorError.invalid(path(key),
                "unknown field \(path(key)) for \(context) (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func require(_ key: String, _ what: String) throws -> Any {
        guard let v = object[key] else { throw OperatorError.invalid(path(key), "missing required field \(path(key)) (\(what))") }
        return v
    }

    func string(_ key: String) throws -> String {
        let v = try require(key, "a string")
        guard let s = v as? String, !(v is NSNumber) else {
            throw OperatorError.invalid(path(key), "\(path(key)) must be a string, got \(JSONFields.describe(v))")
        }
        guard !s.isEmpty else { throw OperatorError.invalid(path(key), "\(path(key)) must not be empty") }
        return s
    }

    func double(_ key: String) throws -> Double {
        let v = try require(key, "a number")
        guard let d = JSONFields.number(v), d.isFinite else {
            throw OperatorError.invalid(path(key), "\(path(key)) must be a finite number, got \(JSONFields.describe(v))")
        }
        return d
    }

    func int(_ key: String) throws -> Int {
        let v = try require(key, "an integer")
        guard let i = JSONFields.integer(v) else {
            throw OperatorError.invalid(path(key), "\(path(key)) must be an integer, got \(JSONFields.describe(v))")
        }
        return i
    }

    /// A seed: an integer in 0 … 2^64 − 1.
    func seed(_ key: String) throws -> UInt64 {
        let v = try require(key, "a non-negative integer seed")
        if let n = JSONFields.numeric(v), JSONFields.isIntegerType(n) {
            if String(cString: n.objCType) == "Q" { return n.uint64Value }
            if n.int64Value >= 0 { return UInt64(n.int64Value) }
        } else if let i = JSONFields.integer(v), i >= 0 {
            return UInt64(i)
        }
        throw OperatorError.invalid(path(key), "\(path(key)) must be a non-negative integer, got \(JSONFields.describe(v))")
    }

    func intArray(_ key: String, count: Int) throws -> [Int] {
        let v = try require(key, "an array of \(count) integers")
        guard let a = v as? [Any], a.count == count else {
            throw OperatorError.invalid(path(key), "\(path(key)) must be an array of \(count) integers, got \(JSONFields.describe(v))")
        }
        return try a.map { e in
            guard let i = JSONFields.integer(e) else {
                throw OperatorError.invalid(path(key), "\(path(key)) must hold integers, got \(JSONFields.describe(e))")
            }
            return i
        }
    }

    // MARK: value classification

    static func numeric(_ v: Any) -> NSNumber? {
        guard let n = v as? NSNumber, !(v is String) else { return nil }
        return String(cString: n.objCType) == "c" ? nil : n   // "c" = JSON true/false
    }

    static func isIntegerType(_ n: NSNumber) -> Bool { !["f", "d"].contains(String(cString: n.objCType)) }

    static func number(_ v: Any) -> Double? { numeric(v)?.doubleValue }

    /// Integral values only; floats like 4.0 are accepted (JSON Schema `integer`), 4.5 is not.
    static func integer(_ v: Any) -> Int? {
        guard let n = numeric(v) else { return nil }
        if isIntegerType(n) {
            if String(cString: n.objCType) == "Q", n.uint64Value > UInt64(Int.max) { return nil }
            return Int(n.int64Value)
        }
        let d = n.doubleValue
        guard d.isFinite, d == d.rounded(), abs(d) <= 9_007_199_254_740_992 else { return nil }
        return Int(d)
    }

    static func describe(_ v: Any) -> String {
        if let n = v as? NSNumber, String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
        if let s = v as? String { return "\"\(s.prefix(60))\"" }
        if let n = numeric(v) { return "\(n)" }
        if v is [Any] { return "an array" }
        if v is [String: Any] { return "an object" }
        if v is NSNull { return "null" }
        return "\(type(of: v))"
    }
}
