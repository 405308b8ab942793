/// The one JSON reader of dmilo (manifests, daemon config, operator objects, the manifest schema).
///
/// Strict RFC 8259: UTF-8 only, no comments, no trailing commas, no duplicate keys, nothing after the document.
/// Foundation's readers accept some of these and disagree on others (on duplicate keys one kept the first value and
/// another the last, so a manifest could validate as one operator and run as another); a reader of our own fails
/// the same way everywhere and names the line and column. Nesting is capped so hostile input cannot exhaust the stack.
public struct JSONSyntaxError: Error, CustomStringConvertible, Sendable, Equatable {
    /// 1-based line and column (columns count characters, not bytes) of the offending input.
    public var line: Int
    public var column: Int
    public var reason: String
    public var description: String { "line \(line), column \(column): \(reason)" }
}

struct JSONReader {
    /// Deeper documents are refused (a manifest nests 3 levels; the schema about 8).
    static let maxDepth = 256

    let bytes: [UInt8]
    /// Salvage mode, for finding the file names of a manifest that was refused: comments are skipped, trailing
    /// commas and non-UTF-8 bytes pass, a repeated key keeps its last value. Never used to accept input.
    let lenient: Bool
    var i = 0

    init(_ bytes: [UInt8], lenient: Bool = false) {
        self.bytes = bytes
        self.lenient = lenient
        // A leading byte-order mark is tolerated (RFC 8259 §8.1 lets parsers ignore it).
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    }

    mutating func document() throws -> JSONValue {
        if !lenient { try checkUTF8() }
        let v = try value(depth: 0)
        skipSpace()
        if i < bytes.count { throw fail("unexpected \(shown(bytes[i])) after the end of the document") }
        return v
    }

    // MARK: errors

    func fail(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        let end = min(offset ?? i, bytes.count)
        var line = 1, column = 1
        for b in bytes[0..<end] {
            if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
        }
        return JSONSyntaxError(line: line, column: column, reason: reason)
    }

    func shown(_ b: UInt8) -> String {
        b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    /// Fails at the first byte that is not well-formed UTF-8 (overlong forms, surrogates and code points above
    /// U+10FFFF included).
    func checkUTF8() throws {
        var k = i
        while k < bytes.count {
            let b = bytes[k]
            if b < 0x80 { k += 1; continue }
            let n: Int, low: UInt8, high: UInt8  // continuation count; bounds of the first continuation byte
            switch b {
            case 0xC2...0xDF: (n, low, high) = (1, 0x80, 0xBF)
            case 0xE0: (n, low, high) = (2, 0xA0, 0xBF)
            case 0xED: (n, low, high) = (2, 0x80, 0x9F)
            case 0xE1...0xEF: (n, low, high) = (2, 0x80, 0xBF)
            case 0xF0: (n, low, high) = (3, 0x90, 0xBF)
            case 0xF1...0xF3: (n, low, high) = (3, 0x80, 0xBF)
            case 0xF4: (n, low, high) = (3, 0x80, 0x8F)
            default: throw fail("the input is not UTF-8 (\(shown(b)))", at: k)
            }
            for j in 1...n {
                guard k + j < bytes.count else { throw fail("the input is not UTF-8 (truncated sequence)", at: k) }
                let c = bytes[k + j]
                guard j == 1 ? (low...high).contains(c) : (0x80...0xBF).contains(c) else {
                    throw fail("the input is not UTF-8 (\(shown(b)) followed by \(shown(c)))", at: k)
                }
            }
            k += n + 1
        }
    }

    // MARK: grammar

    mutating func skipSpace() {
        while i < bytes.count {
            if [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) {
                i += 1
            } else if lenient, bytes[i] == UInt8(ascii: "/"), i + 1 < bytes.count,
                let end = bytes[(i + 2)...].firstRange(of: bytes[i + 1] == UInt8(ascii: "*") ? [0x2A, 0x2F] : [0x0A])
            {
                i = end.upperBound
            } else {
                return
            }
        }
    }

    mutating func value(depth: Int) throws -> JSONValue {
        skipSpace()
        guard i < bytes.count else { throw fail("unexpected end of input, expected a value") }
        guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        case UInt8(ascii: "/"): throw fail("comments are not allowed in JSON")
        default: throw fail("unexpected \(shown(bytes[i])), expected a value")
        }
    }

    mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard bytes.count - i >= w.count, Array(bytes[i..<i + w.count]) == w else {
            throw fail("unexpected \(shown(bytes[i])), expected a value")
        }
        i += w.count
    }

    /// After an element of an array or object: true after `,` (another element follows; a closing bracket right
    /// after it is a trailing comma), false after the closing bracket `close`.
    mutating func another(close: UInt8, inside what: String) throws -> Bool {
        skipSpace()
        guard i < bytes.count else { throw fail("unexpected end of input inside \(what)") }
        switch bytes[i] {
        case UInt8(ascii: ","):
            i += 1
            skipSpace()
            guard i < bytes.count, bytes[i] == close else { return true }
            if lenient { i += 1; return false }
            throw fail("trailing comma before \(shown(close))")
        case close:
            i += 1
            return false
        case UInt8(ascii: "/"): throw fail("comments are not allowed in JSON")
        default: throw fail("unexpected \(shown(bytes[i])), expected ',' or \(shown(close))")
        }
    }

    mutating func object(depth: Int) throws -> JSONValue {
        i += 1
        var o: [String: JSONValue] = [:]
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
        while true {
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of input inside an object") }
            if bytes[i] == UInt8(ascii: "/") { throw fail("comments are not allowed in JSON") }
            guard bytes[i] == UInt8(ascii: "\"") else { throw fail("unexpected \(shown(bytes[i])), expected a key in double quotes") }
            let keyAt = i
            let key = try string()
            guard o[key] == nil || lenient else { throw fail("duplicate key \"\(key)\"", at: keyAt) }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after the key \"\(key)\"") }
            i += 1
            o[key] = try value(depth: depth + 1)
            if try !another(close: UInt8(ascii: "}"), inside: "an object") { return .object(o) }
        }
    }

    mutating func array(depth: Int) throws -> JSONValue {
        i += 1
        var a: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
        while true {
            a.append(try value(depth: depth + 1))
            if try !another(close: UInt8(ascii: "]"), inside: "an array") { return .array(a) }
        }
    }

    mutating func number() throws -> JSONNumber {
        let start = i
        func digits() -> Int {
            let s = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
            return i - s
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        guard digits() > 0 else { throw fail("a number needs digits after '-'") }
        if bytes[intStart] == UInt8(ascii: "0"), i - intStart > 1 { throw fail("numbers may not have leading zeros", at: intStart) }
        var integral = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1; integral = false
            guard digits() > 0 else { throw fail("a number needs digits after '.'") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1; integral = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard let d = Double(text) else { throw fail("\(text) is not a number", at: start) }
        guard d.isFinite else { throw fail("\(text) is out of range", at: start) }
        return JSONNumber(double: d, int64: integral ? Int64(text) : nil, uint64: integral ? UInt64(text) : nil)
    }

    mutating func string() throws -> String {
        let open = i
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string", at: open) }
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                i += 1
                guard i < bytes.count else { throw fail("unterminated string", at: open) }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"): out += Array(String(try escapedScalar()).utf8)
                default: throw fail("invalid escape \\\(shown(e))", at: i - 2)
                }
            case 0..<0x20:
                throw fail("control character \(shown(b)) inside a string (escape it)")
            default:
                out.append(b)
                i += 1
            }
        }
    }

    /// The code point of `\uXXXX` (`i` just after the `u`), joining a surrogate pair; lone surrogates fail.
    mutating func escapedScalar() throws -> Character {
        let at = i - 2
        let hi = try hex4()
        var code = UInt32(hi)
        if (0xD800...0xDBFF).contains(hi) {
            guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                throw fail("unpaired surrogate \\u\(String(hi, radix: 16))", at: at)
            }
            i += 2
            let lo = try hex4()
            guard (0xDC00...0xDFFF).contains(lo) else { throw fail("unpaired surrogate \\u\(String(hi, radix: 16))", at: at) }
            code = 0x10000 + ((UInt32(hi) - 0xD800) << 10) + (UInt32(lo) - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(hi) {
            throw fail("unpaired surrogate \\u\(String(hi, radix: 16))", at: at)
        }
        return Character(Unicode.Scalar(code)!)
    }

    mutating func hex4() throws -> UInt16 {
        guard bytes.count - i >= 4, let v = UInt16(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16),
            bytes[i..<i + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
        else {
            throw fail("\\u needs four hex digits")
        }
        i += 4
        return v
    }
}
