import DMiloFormats

/// Typed reads of one JSON object (from the strict ``JSONValue`` reader, or built in Swift from native values and
/// converted), with errors naming the manifest field (`<prefix>.<key>`). JSON booleans are never numbers, and an
/// integer field accepts only integral numbers.
struct JSONFields {
    let object: [String: JSONValue]
    let prefix: String

    init(_ value: JSONValue, prefix: String) throws {
        guard let object = value.objectValue else {
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
            throw OperatorError.invalid(
                path(key),
                "unknown field \(path(key)) for \(context) (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func require(_ key: String, _ what: String) throws -> JSONValue {
        guard let v = object[key] else { throw OperatorError.invalid(path(key), "missing required field \(path(key)) (\(what))") }
        return v
    }

    func string(_ key: String) throws -> String {
        let v = try require(key, "a string")
        guard let s = v.stringValue else {
            throw OperatorError.invalid(path(key), "\(path(key)) must be a string, got \(JSONFields.describe(v))")
        }
        guard !s.isEmpty else { throw OperatorError.invalid(path(key), "\(path(key)) must not be empty") }
        return s
    }

    func double(_ key: String) throws -> Double {
        let v = try require(key, "a number")
        guard let d = v.doubleValue else {
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
        if case .number(let n) = v, let u = n.uint64 { return u }
        if let i = JSONFields.integer(v), i >= 0 { return UInt64(i) }
        throw OperatorError.invalid(path(key), "\(path(key)) must be a non-negative integer, got \(JSONFields.describe(v))")
    }

    func intArray(_ key: String, count: Int) throws -> [Int] {
        let v = try require(key, "an array of \(count) integers")
        guard case .array(let a) = v, a.count == count else {
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

    /// Integral values only: integers as written (any 64-bit signed value), and reals like 4.0 (JSON Schema
    /// `integer`) up to 2^53; 4.5 is not.
    static func integer(_ v: JSONValue) -> Int? {
        guard case .number(let n) = v else { return nil }
        if let i = n.int64 { return Int(i) }
        if n.uint64 != nil { return nil }  // above Int.max
        return v.intValue
    }

    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return "\"\(s.prefix(60))\""
        case .number(let n): return "\(n)"
        case .array: return "an array"
        case .object: return "an object"
        case .null: return "null"
        }
    }
}
