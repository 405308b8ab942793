// Strict typed access to a parsed JSON config (diffusers config.json, ADM config.json): every error names the file
// and the key.

import DMiloFormats
import Foundation

/// Typed access to a JSON object with errors naming the file and key.
struct ConfigReader {
    let d: [String: Any]
    let file: String

    /// Largest integer a config may state unless a key says otherwise (widths, counts): far above any published
    /// model, and low enough that no parameter, activation or attention size computed from the config overflows.
    static let maxValue = 1 << 13
    /// Largest image size: attention at full resolution stores heads·(H·W)² floats, which must stay countable.
    static let maxImageSize = 2048
    /// Most levels (entries of block lists): H and W must be multiples of 2^(levels − 1).
    static let maxLevels = 8

    func isNull(_ k: String) -> Bool { d[k] is NSNull }

    func int(_ k: String, min: Int = Int.min, max: Int = ConfigReader.maxValue) throws -> Int {
        guard let n = d[k] as? NSNumber, n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 1e15 else {
            throw FormatError(file: file, field: k, "must be an integer, got \(describe(d[k]))")
        }
        let v = n.intValue
        guard v >= min && v <= max else {
            throw FormatError(file: file, field: k, "value \(v) is not supported (allowed \(min == Int.min ? "…" : String(min))…\(max == Int.max ? "" : String(max)))")
        }
        return v
    }

    func float(_ k: String) throws -> Float { Float(try double(k)) }

    func double(_ k: String) throws -> Double {
        guard let n = d[k] as? NSNumber, n.doubleValue.isFinite else {
            throw FormatError(file: file, field: k, "must be a number, got \(describe(d[k]))")
        }
        return n.doubleValue
    }

    func bool(_ k: String) throws -> Bool {
        guard let b = d[k] as? Bool else { throw FormatError(file: file, field: k, "must be true or false, got \(describe(d[k]))") }
        return b
    }

    func string(_ k: String) throws -> String {
        guard let s = d[k] as? String else { throw FormatError(file: file, field: k, "must be a string, got \(describe(d[k]))") }
        return s
    }

    func expectString(_ k: String, _ allowed: String) throws {
        let s = try string(k)
        guard s == allowed else { throw FormatError(file: file, field: k, "value \"\(s)\" is not supported (only \"\(allowed)\")") }
    }

    func enumValue<E: RawRepresentable>(_ k: String) throws -> E where E.RawValue == String {
        let s = try string(k)
        guard let e = E(rawValue: s) else { throw FormatError(file: file, field: k, "value \"\(s)\" is not supported") }
        return e
    }

    func enumList<E: RawRepresentable>(_ k: String) throws -> [E] where E.RawValue == String {
        guard let a = d[k] as? [Any] else { throw FormatError(file: file, field: k, "must be a list of strings") }
        guard a.count <= Self.maxLevels else { throw FormatError(file: file, field: k, "has \(a.count) entries (at most \(Self.maxLevels))") }
        return try a.map { v in
            guard let s = v as? String else { throw FormatError(file: file, field: k, "must be a list of strings") }
            guard let e = E(rawValue: s) else { throw FormatError(file: file, field: k, "value \"\(s)\" is not supported") }
            return e
        }
    }

    func intList(_ k: String) throws -> [Int] {
        guard let a = d[k] as? [Any] else { throw FormatError(file: file, field: k, "must be a list of integers") }
        guard a.count <= Self.maxLevels else { throw FormatError(file: file, field: k, "has \(a.count) entries (at most \(Self.maxLevels))") }
        return try a.map { v in
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.doubleValue > 0, n.doubleValue <= Double(Self.maxValue) else {
                throw FormatError(file: file, field: k, "must be a list of integers in 1…\(Self.maxValue)")
            }
            return n.intValue
        }
    }

    func describe(_ v: Any?) -> String {
        guard let v else { return "nothing" }
        if v is NSNull { return "null" }
        return "\(v)"
    }
}
