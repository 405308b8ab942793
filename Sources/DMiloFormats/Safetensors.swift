// safetensors reader (the huggingface/safetensors file format):
//   u64 LE N | N bytes UTF-8 JSON header | byte buffer
// header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}}
// Offsets are relative to the byte buffer. We are strict: every tensor's byte length must equal
// shape·dtype size, ranges must lie inside the buffer and must not overlap, so a corrupt file fails at open time
// with the file and tensor named instead of producing garbage weights.

import Foundation

/// Element types of the safetensors format. Only F32, F16 and BF16 can be loaded as float32.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64, F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E4M3, .F8_E5M2: return 1
        case .U16, .I16, .F16, .BF16: return 2
        case .U32, .I32, .F32: return 4
        case .U64, .I64, .F64: return 8
        }
    }

    /// True for the types `loadF32` converts.
    public var isFloatLoadable: Bool { self == .F32 || self == .F16 || self == .BF16 }
}

/// One tensor entry of a safetensors header.
public struct SafetensorsTensor: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Absolute byte offset in the file.
    public let fileOffset: Int
    /// Byte length.
    public let byteCount: Int
    /// Product of `shape` (1 for a 0-rank tensor).
    public var count: Int { shape.reduce(1, *) }
}

/// A memory-mapped, validated safetensors file.
public final class SafetensorsFile: @unchecked Sendable {
    /// Largest header accepted (the format's own limit).
    public static let maxHeaderBytes = 100 * 1024 * 1024

    public let path: String
    public let file: MappedFile
    /// Tensors by name.
    public let tensors: [String: SafetensorsTensor]
    /// Names sorted, for stable listings.
    public let names: [String]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]

    /// Opens and validates `path`. Throws `FormatError` naming the file (and tensor) on any inconsistency.
    public init(path: String) throws {
        self.path = path
        let file = try MappedFile(path: path)
        self.file = file
        guard file.count >= 8 else { throw FormatError(file: path, "file is \(file.count) bytes; a safetensors file starts with an 8-byte header length") }
        let n64 = try file.uint64LE(at: 0, what: "header length")
        guard n64 <= UInt64(Self.maxHeaderBytes) else {
            throw FormatError(file: path, field: "header length", "\(n64) bytes exceeds the 100 MB limit (not a safetensors file?)")
        }
        let n = Int(n64)
        let headerBytes = try file.slice(8, n, what: "JSON header")
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            throw FormatError(file: path, field: "JSON header", "is not valid JSON (\(error.localizedDescription))")
        }
        guard let dict = json as? [String: Any] else {
            throw FormatError(file: path, field: "JSON header", "must be a JSON object")
        }
        let dataStart = 8 + n
        let dataCount = file.count - dataStart
        var tensors: [String: SafetensorsTensor] = [:]
        var metadata: [String: String] = [:]
        var ranges: [(Int, Int, String)] = []
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw FormatError(file: path, field: "__metadata__", "must be an object of strings")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw FormatError(file: path, field: "__metadata__.\(k)", "must be a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else {
                throw FormatError(file: path, field: name, "header entry must be an object")
            }
            guard let ds = entry["dtype"] as? String else { throw FormatError(file: path, field: name, "missing \"dtype\"") }
            guard let dtype = SafetensorsDType(rawValue: ds) else {
                throw FormatError(file: path, field: name, "unknown dtype \"\(ds)\"")
            }
            guard let shapeAny = entry["shape"] as? [Any] else { throw FormatError(file: path, field: name, "missing \"shape\"") }
            var shape: [Int] = []
            for d in shapeAny {
                guard let i = Self.integer(d), i >= 0 else {
                    throw FormatError(file: path, field: name, "shape \(shapeAny) has a non-integer or negative dimension")
                }
                shape.append(i)
            }
            guard let offs = entry["data_offsets"] as? [Any], offs.count == 2,
                let begin = Self.integer(offs[0]), let end = Self.integer(offs[1])
            else {
                throw FormatError(file: path, field: name, "\"data_offsets\" must be two integers")
            }
            for k in entry.keys where !["dtype", "shape", "data_offsets"].contains(k) {
                throw FormatError(file: path, field: name, "unexpected key \"\(k)\"")
            }
            guard let count = checkedElementCount(shape) else { throw FormatError(file: path, field: name, "shape \(shape) overflows") }
            guard begin >= 0, end >= begin else {
                throw FormatError(file: path, field: name, "data_offsets [\(begin), \(end)] are not an increasing range")
            }
            guard end <= dataCount else {
                throw FormatError(
                    file: path, field: name,
                    "data_offsets end \(end) is past the data buffer (\(dataCount) bytes): file truncated?")
            }
            let (need, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, end - begin == need else {
                throw FormatError(
                    file: path, field: name,
                    "data_offsets span \(end - begin) bytes but shape \(shape) of \(ds) needs \(overflow ? "too many" : String(need))")
            }
            tensors[name] = SafetensorsTensor(
                name: name, dtype: dtype, shape: shape, fileOffset: dataStart + begin,
                byteCount: end - begin)
            ranges.append((begin, end, name))
        }
        ranges.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        for i in ranges.indices.dropFirst() where ranges[i].0 < ranges[i - 1].1 {
            throw FormatError(file: path, field: ranges[i].2, "data overlaps tensor \"\(ranges[i - 1].2)\"")
        }
        self.tensors = tensors
        self.names = tensors.keys.sorted()
        self.metadata = metadata
    }

    /// The raw little-endian bytes of tensor `name`.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let t = tensors[name] else { throw FormatError(file: path, field: name, "no such tensor") }
        return try file.slice(t.fileOffset, t.byteCount, what: name)
    }

    /// Converts tensor `name` (F32, F16 or BF16) to float32 into `out`, which must hold exactly its element count.
    public func loadF32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let t = tensors[name] else { throw FormatError(file: path, field: name, "no such tensor") }
        guard out.count == t.count else {
            throw FormatError(file: path, field: name, "has \(t.count) elements, destination holds \(out.count)")
        }
        let raw = try rawBytes(name)
        guard let src = raw.baseAddress, let dst = out.baseAddress else { return }
        switch t.dtype {
        case .F32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: t.byteCount)  // little-endian hosts only
        case .F16: HalfPrecision.f16ToF32(src, dst, count: t.count)
        case .BF16: HalfPrecision.bf16ToF32(src, dst, count: t.count)
        default:
            throw FormatError(file: path, field: name, "dtype \(t.dtype.rawValue) cannot be loaded as float (F32, F16, BF16 only)")
        }
    }

    /// Drops the resident pages of tensor `name` (see `MappedFile.dropPages`); reading it later still works.
    public func dropPages(_ name: String) {
        guard let t = tensors[name] else { return }
        file.dropPages(t.fileOffset, t.byteCount)
    }

    /// A JSON integer (JSONSerialization yields NSNumber; reject fractional values).
    static func integer(_ v: Any) -> Int? {
        if let n = v as? NSNumber {
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
            return n.intValue
        }
        return nil
    }
}

/// Writer for float tensors (used by tests and tools): F32, F16 or BF16, names sorted, buffer 8-byte aligned.
public enum SafetensorsWriter {
    /// A tensor to write: values are float32 and converted to `dtype`.
    public struct Entry {
        public var name: String, shape: [Int], values: [Float], dtype: SafetensorsDType
        public init(name: String, shape: [Int], values: [Float], dtype: SafetensorsDType = .F32) {
            self.name = name; self.shape = shape; self.values = values; self.dtype = dtype
        }
    }

    /// Serialises `entries` (+ optional metadata) to safetensors bytes.
    public static func encode(_ entries: [Entry], metadata: [String: String] = [:]) throws -> [UInt8] {
        var header: [String: Any] = [:]
        var payload: [UInt8] = []
        for e in entries.sorted(by: { $0.name < $1.name }) {
            guard e.dtype.isFloatLoadable else { throw FormatError(file: "<memory>", field: e.name, "writer supports F32/F16/BF16") }
            guard e.shape.reduce(1, *) == e.values.count else {
                throw FormatError(file: "<memory>", field: e.name, "\(e.values.count) values for shape \(e.shape)")
            }
            let begin = payload.count
            for v in e.values {
                switch e.dtype {
                case .F32: withUnsafeBytes(of: v.bitPattern.littleEndian) { payload.append(contentsOf: $0) }
                case .F16: withUnsafeBytes(of: HalfPrecision.f32ToF16(v).littleEndian) { payload.append(contentsOf: $0) }
                default: withUnsafeBytes(of: HalfPrecision.f32ToBF16(v).littleEndian) { payload.append(contentsOf: $0) }
                }
            }
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [begin, payload.count]]
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out += json
        out += payload
        return out
    }

    /// Writes `entries` to `path`.
    public static func write(_ entries: [Entry], to path: String, metadata: [String: String] = [:]) throws {
        let bytes = try encode(entries, metadata: metadata)
        do { try Data(bytes).write(to: URL(fileURLWithPath: path)) } catch {
            throw FormatError(file: path, "cannot write (\(error.localizedDescription))")
        }
    }
}
