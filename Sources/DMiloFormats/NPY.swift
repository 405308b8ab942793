// NumPy .npy reader/writer (numpy/lib/format.py, format versions 1.0 and 2.0):
//   "\x93NUMPY" | major | minor | header length (u16 LE for v1, u32 LE for v2/v3) | ASCII dict header | data
// header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  padded with spaces to a multiple of 64.
// We read float32/float64 little-endian C-order arrays (converting f8 to f4) and write float32 v1.0 files.

import DMiloKernels
import Foundation

/// NumPy .npy files of float32/float64.
public enum NPY {
    /// A decoded array: shape and float32 values in C order.
    public struct Array: Sendable, Equatable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) { self.shape = shape; self.values = values }
    }

    /// Reads `path`. Throws `FormatError` naming the file and header field for Fortran order, big-endian or
    /// non-float dtypes, malformed headers and truncated data.
    public static func read(path: String) throws -> Array {
        let file = try MappedFile(path: path)
        return try decode(file.bytes, name: path)
    }

    /// Reads `path` into a `Tensor` with the file's shape (a 0-d array becomes shape [1]).
    public static func readTensor(path: String) throws -> Tensor {
        let a = try read(path: path)
        return Tensor(shape: a.shape.isEmpty ? [1] : a.shape, values: a.values)
    }

    /// Decodes .npy bytes; `name` is used in errors.
    public static func decode(_ bytes: UnsafeRawBufferPointer, name: String) throws -> Array {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Swift.Array(bytes[0..<6]) == magic else {
            throw FormatError(file: name, "not a .npy file (missing \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLen: Int, headerStart: Int
        switch major {
        case 1:
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw FormatError(file: name, field: "header", "truncated") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw FormatError(file: name, field: "version", "unsupported .npy format version \(major).\(bytes[7])")
        }
        guard headerStart + headerLen <= bytes.count else {
            throw FormatError(file: name, field: "header", "declares \(headerLen) bytes but the file ends first (truncated)")
        }
        guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLen)], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw FormatError(file: name, field: "header", "is not text")
        }
        let descr = try stringValue(header, key: "descr", name: name)
        let fortran = try boolValue(header, key: "fortran_order", name: name)
        let shape = try shapeValue(header, name: name)
        if fortran {
            throw FormatError(file: name, field: "fortran_order", "Fortran-order arrays are not supported; save with np.ascontiguousarray")
        }
        let itemSize: Int
        switch descr {
        case "<f4": itemSize = 4
        case "<f8": itemSize = 8
        case ">f4", ">f8":
            throw FormatError(file: name, field: "descr", "big-endian dtype '\(descr)' is not supported; use little-endian float32 ('<f4')")
        default:
            throw FormatError(file: name, field: "descr", "dtype '\(descr)' is not supported; use float32 ('<f4') or float64 ('<f8')")
        }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw FormatError(file: name, field: "shape", "\(shape) overflows") }
            count = p
        }
        let dataStart = headerStart + headerLen
        guard count <= bytes.count else {  // also keeps count·itemSize from overflowing
            throw FormatError(file: name, field: "data", "shape \(shape) needs more bytes than the file has (truncated)")
        }
        let need = count * itemSize
        guard bytes.count - dataStart >= need else {
            throw FormatError(
                file: name, field: "data",
                "shape \(shape) needs \(need) bytes but only \(bytes.count - dataStart) follow the header (truncated)")
        }
        var values = [Float](repeating: 0, count: count)
        let base = bytes.baseAddress! + dataStart
        values.withUnsafeMutableBufferPointer { out in
            if itemSize == 4 {
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            } else {
                for i in 0..<count {
                    out[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            }
        }
        return Array(shape: shape, values: values)
    }

    /// Encodes a float32 C-order array as .npy v1.0 (v2.0 if the header would not fit in 65535 bytes).
    public static func encode(shape: [Int], values: UnsafeBufferPointer<Float>) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let v2 = dict.utf8.count + 1 + 10 > 65535
        let prefix = v2 ? 12 : 10
        while (prefix + dict.utf8.count + 1) % 64 != 0 { dict += " " }
        dict += "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, v2 ? 2 : 1, 0]
        let n = dict.utf8.count
        out += [UInt8(n & 0xff), UInt8((n >> 8) & 0xff)]
        if v2 { out += [UInt8((n >> 16) & 0xff), UInt8((n >> 24) & 0xff)] }
        out += Swift.Array(dict.utf8)
        out.reserveCapacity(out.count + 4 * values.count)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    /// Writes a float32 array to `path` (atomically: temp file then rename).
    public static func write(path: String, shape: [Int], values: UnsafeBufferPointer<Float>) throws {
        guard shape.reduce(1, *) == values.count else {
            throw FormatError(file: path, field: "shape", "\(shape) does not match \(values.count) values")
        }
        do {
            try Data(encode(shape: shape, values: values)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw FormatError(file: path, "cannot write (\(error.localizedDescription))")
        }
    }

    /// Writes `tensor` with its shape.
    public static func write(path: String, tensor: Tensor) throws {
        try write(path: path, shape: tensor.shape, values: UnsafeBufferPointer(tensor.buffer))
    }

    // MARK: header dict parsing (a Python literal; we accept exactly the three keys numpy writes)

    static func valueText(_ header: String, key: String, name: String) throws -> Substring {
        for quote in ["'", "\""] {
            if let r = header.range(of: "\(quote)\(key)\(quote)") {
                var rest = header[r.upperBound...].drop(while: { $0 == " " })
                guard rest.first == ":" else { break }
                rest = rest.dropFirst().drop(while: { $0 == " " })
                return rest
            }
        }
        throw FormatError(file: name, field: key, "missing from the .npy header")
    }

    static func stringValue(_ header: String, key: String, name: String) throws -> String {
        let rest = try valueText(header, key: key, name: name)
        guard let q = rest.first, q == "'" || q == "\"" else {
            throw FormatError(file: name, field: key, "is not a string")
        }
        let body = rest.dropFirst()
        guard let end = body.firstIndex(of: q) else { throw FormatError(file: name, field: key, "unterminated string") }
        return String(body[..<end])
    }

    static func boolValue(_ header: String, key: String, name: String) throws -> Bool {
        let rest = try valueText(header, key: key, name: name)
        if rest.hasPrefix("True") { return true }
        if rest.hasPrefix("False") { return false }
        throw FormatError(file: name, field: key, "is not True/False")
    }

    static func shapeValue(_ header: String, name: String) throws -> [Int] {
        let rest = try valueText(header, key: "shape", name: name)
        guard rest.first == "(", let end = rest.firstIndex(of: ")") else {
            throw FormatError(file: name, field: "shape", "is not a tuple")
        }
        let inner = rest[rest.index(after: rest.startIndex)..<end]
        var dims: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { throw FormatError(file: name, field: "shape", "bad dimension '\(t)'") }
            dims.append(d)
        }
        return dims
    }
}
