// GGUF v3 (ggml-org/ggml docs/gguf.md): the ecosystem's container for quantised weights.
//
//   u32 magic "GGUF" | u32 version 3 | u64 tensor count | u64 KV count
//   KV*:     string key | u32 value type | value            (string = u64 length + UTF-8 bytes, no NUL)
//   tensor*: string name | u32 n_dims | u64 ne[n_dims] (INNERMOST FIRST) | u32 ggml type | u64 offset (from data start)
//   padding to `general.alignment` (default 32), then the data section; every tensor offset is aligned.
// Tensor types used here: F32 (0), F16 (1), Q8_0 (8: blocks of 32 weights = f16 scale d + 32 int8, 34 bytes).

/// ggml tensor types dmilo reads and writes.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q8_0 = 8

    public var name: String {
        switch self {
        case .f32: "F32";
        case .f16: "F16";
        case .q8_0: "Q8_0"
        }
    }

    /// Bytes of a tensor of `shape`, nil when the element count or the byte size overflows.
    public func checkedByteCount(shape: [Int]) -> Int? {
        guard let n = checkedElementCount(shape), n <= Int.max / 4 else { return nil }
        return byteCount(elements: n)
    }

    /// Bytes for `count` elements (Q8_0: count must be a multiple of 32).
    public func byteCount(elements count: Int) -> Int {
        switch self {
        case .f32: return 4 * count
        case .f16: return 2 * count
        case .q8_0: return count / Q8_0.blockSize * Q8_0.blockBytes
        }
    }
}

/// A metadata value. Arrays hold one element type.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)
    case array([GGUFValue])

    var typeID: UInt32 {
        switch self {
        case .uint8: 0;
        case .int8: 1;
        case .uint16: 2;
        case .int16: 3;
        case .uint32: 4;
        case .int32: 5
        case .float32: 6;
        case .bool: 7;
        case .string: 8;
        case .array: 9;
        case .uint64: 10;
        case .int64: 11;
        case .float64: 12
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v);
        case .int8(let v): Int(v);
        case .uint16(let v): Int(v);
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v);
        case .int32(let v): Int(v);
        case .uint64(let v): Int(exactly: v);
        case .int64(let v): Int(v)
        default: nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v);
        case .float64(let v): v;
        default: intValue.map(Double.init)
        }
    }
}

/// Q8_0 (ggml `block_q8_0`): per block of 32 weights d = max|x|/127 stored as f16, q = round(x/d) as int8.
public enum Q8_0 {
    public static let blockSize = 32
    public static let blockBytes = 34

    /// Reference quantiser (ggml `quantize_row_q8_0_ref`): rounding half away from zero like `roundf`.
    public static func quantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        precondition(x.count % blockSize == 0 && out.count == x.count / blockSize * blockBytes)
        for b in 0..<(x.count / blockSize) {
            var amax: Float = 0
            for i in 0..<blockSize { amax = max(amax, abs(x[b * blockSize + i])) }
            let d = amax / 127
            let inv: Float = d == 0 ? 0 : 1 / d
            let base = b * blockBytes
            out.storeBytes(of: HalfPrecision.f32ToF16(d).littleEndian, toByteOffset: base, as: UInt16.self)
            for i in 0..<blockSize {
                let q = (x[b * blockSize + i] * inv).rounded(.toNearestOrAwayFromZero)
                out.storeBytes(of: Int8(max(-128, min(127, q))), toByteOffset: base + 2 + i, as: Int8.self)
            }
        }
    }

    /// x = d·q, with d read back from its f16 (what every GGUF reader computes).
    public static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / blockSize) {
            let base = src + b * blockBytes
            let d = HalfPrecision.f16ToF32(UInt16(littleEndian: base.loadUnaligned(as: UInt16.self)))
            let q = (base + 2).assumingMemoryBound(to: Int8.self)
            let o = out + b * blockSize
            for i in 0..<blockSize { o[i] = d * Float(q[i]) }
        }
    }
}

/// One tensor in a GGUF file. `shape` is in PyTorch order (outermost first), i.e. GGUF's ne[] reversed.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var type: GGMLType
    /// Absolute byte offset of the data in the file.
    public var fileOffset: Int
    public var byteCount: Int
    public var count: Int { shape.reduce(1, *) }
}

/// A memory-mapped GGUF v3 file. Every count, length and offset is checked against the file before use, so a
/// corrupt or truncated file is an error naming the file and what is wrong, never a crash.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let metadata: [String: GGUFValue]
    /// Keys in file order.
    public let metadataKeys: [String]
    public let tensors: [String: GGUFTensorInfo]
    /// Tensor names in file order.
    public let tensorNames: [String]
    public let alignment: Int
    let file: MappedFile

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var r = Reader(bytes: file.bytes, path: path)
        guard try r.u32("magic") == 0x4655_4747 else { throw FormatError(file: path, "not a GGUF file (bad magic)") }
        let version = try r.u32("version")
        guard version == 3 else { throw FormatError(file: path, field: "version", "GGUF version \(version); only version 3 is read") }
        let nTensors = try r.count("tensor count", limit: 1 << 20)
        let nKV = try r.count("metadata count", limit: 1 << 20)
        var md: [String: GGUFValue] = [:], keys: [String] = []
        for _ in 0..<nKV {
            let k = try r.string("metadata key")
            let t = try r.u32("type of \(k)")
            md[k] = try r.value(type: t, what: k, depth: 0)
            keys.append(k)
        }
        metadata = md
        metadataKeys = keys
        var align = 32
        if let a = md["general.alignment"] {
            guard let v = a.intValue, v > 0, v & (v - 1) == 0 else { throw FormatError(file: path, field: "general.alignment", "must be a power of two") }
            align = v
        }
        alignment = align
        var infos: [(String, [Int], GGMLType, Int)] = []
        for _ in 0..<nTensors {
            let name = try r.string("tensor name")
            let nd = try r.u32("dimensions of \(name)")
            guard (1...4).contains(nd) else { throw FormatError(file: path, field: name, "\(nd) dimensions") }
            var ne: [Int] = []
            for _ in 0..<nd { ne.append(try r.count("dimension of \(name)", limit: 1 << 31)) }
            let tid = try r.u32("type of \(name)")
            guard let type = GGMLType(rawValue: tid) else { throw FormatError(file: path, field: name, "unsupported ggml type \(tid)") }
            let off = try r.count("offset of \(name)", limit: Int.max / 2)
            if type == .q8_0, ne[0] % Q8_0.blockSize != 0 {
                throw FormatError(file: path, field: name, "Q8_0 needs the innermost dimension to be a multiple of 32, got \(ne[0])")
            }
            infos.append((name, Array(ne.reversed()), type, off))
        }
        let dataStart = (r.offset + align - 1) / align * align
        var ts: [String: GGUFTensorInfo] = [:], names: [String] = []
        for (name, shape, type, off) in infos {
            // Sizes in checked arithmetic: a dimension list whose product or byte size overflows, or whose data
            // does not fit in the file, is refused before anything is sized from it.
            guard let bytes = type.checkedByteCount(shape: shape), dataStart <= file.count,
                off % align == 0, off <= file.count - dataStart, bytes <= file.count - dataStart - off
            else {
                throw FormatError(
                    file: path, field: name,
                    "data (shape \(shape) of \(type.name) at offset \(off)) lies outside the file or is misaligned; truncated?")
            }
            guard ts[name] == nil else { throw FormatError(file: path, field: name, "duplicate tensor name") }
            ts[name] = GGUFTensorInfo(name: name, shape: shape, type: type, fileOffset: dataStart + off, byteCount: bytes)
            names.append(name)
        }
        tensors = ts
        tensorNames = names
    }

    /// The raw stored bytes of a tensor.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let t = tensors[name] else { throw FormatError(file: path, field: name, "no such tensor") }
        return try file.slice(t.fileOffset, t.byteCount, what: name)
    }

    /// Dequantises tensor `name` into `out` (count must match).
    public func loadF32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let t = tensors[name] else { throw FormatError(file: path, field: name, "no such tensor") }
        guard out.count == t.count else { throw FormatError(file: path, field: name, "\(t.count) elements, buffer holds \(out.count)") }
        let raw = try rawBytes(name)
        switch t.type {
        case .f32:
            for i in 0..<t.count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16: HalfPrecision.f16ToF32(raw.baseAddress!, out.baseAddress!, count: t.count)
        case .q8_0: Q8_0.dequantize(raw.baseAddress!, count: t.count, into: out.baseAddress!)
        }
    }

    public func dropPages(_ name: String) {
        if let t = tensors[name] { file.dropPages(t.fileOffset, t.byteCount) }
    }

    /// Bounds-checked little-endian reader over the mapped header.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        let path: String
        var offset = 0

        mutating func take(_ n: Int, _ what: String) throws -> Int {
            guard n >= 0, offset <= bytes.count - n else { throw FormatError(file: path, field: what, "file ends inside the header (truncated)") }
            defer { offset += n }
            return offset
        }
        mutating func u32(_ what: String) throws -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, what), as: UInt32.self)) }
        mutating func u64(_ what: String) throws -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, what), as: UInt64.self)) }
        mutating func count(_ what: String, limit: Int) throws -> Int {
            let v = try u64(what)
            guard v <= UInt64(limit) else { throw FormatError(file: path, field: what, "\(v) is implausibly large") }
            return Int(v)
        }
        mutating func string(_ what: String) throws -> String {
            let n = try count("length of \(what)", limit: 1 << 26)
            let o = try take(n, what)
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[o..<(o + n)]), as: UTF8.self)
        }
        mutating func value(type: UInt32, what: String, depth: Int) throws -> GGUFValue {
            func load<T>(_: T.Type, _ n: Int) throws -> T { bytes.loadUnaligned(fromByteOffset: try take(n, what), as: T.self) }
            switch type {
            case 0: return .uint8(try load(UInt8.self, 1))
            case 1: return .int8(try load(Int8.self, 1))
            case 2: return .uint16(UInt16(littleEndian: try load(UInt16.self, 2)))
            case 3: return .int16(Int16(littleEndian: try load(Int16.self, 2)))
            case 4: return .uint32(UInt32(littleEndian: try load(UInt32.self, 4)))
            case 5: return .int32(Int32(littleEndian: try load(Int32.self, 4)))
            case 6: return .float32(Float(bitPattern: UInt32(littleEndian: try load(UInt32.self, 4))))
            case 7:
                let b = try load(UInt8.self, 1)
                guard b <= 1 else { throw FormatError(file: path, field: what, "bool value \(b)") }
                return .bool(b == 1)
            case 8: return .string(try string(what))
            case 9:
                guard depth < 2 else { throw FormatError(file: path, field: what, "arrays nested too deeply") }
                let et = try u32("element type of \(what)")
                let n = try count("length of \(what)", limit: 1 << 24)
                guard n <= bytes.count - offset else {  // every element takes at least one byte
                    throw FormatError(file: path, field: what, "array of \(n) elements is longer than the rest of the file")
                }
                var a: [GGUFValue] = []
                a.reserveCapacity(n)
                for _ in 0..<n { a.append(try value(type: et, what: what, depth: depth + 1)) }
                return .array(a)
            case 10: return .uint64(UInt64(littleEndian: try load(UInt64.self, 8)))
            case 11: return .int64(Int64(littleEndian: try load(Int64.self, 8)))
            case 12: return .float64(Double(bitPattern: UInt64(littleEndian: try load(UInt64.self, 8))))
            default: throw FormatError(file: path, field: what, "unknown metadata type \(type)")
            }
        }
    }
}

/// Builds a GGUF v3 file in memory: metadata in insertion order, tensors 32-byte aligned.
public struct GGUFWriter {
    public let alignment = 32
    private var kv: [(String, GGUFValue)] = []
    private var tensors: [(name: String, shape: [Int], type: GGMLType, data: [UInt8])] = []

    public init() {}

    public mutating func add(_ key: String, _ value: GGUFValue) { kv.append((key, value)) }

    /// Adds a tensor (`shape` in PyTorch order) converted to `type` from float32 values.
    public mutating func addTensor(_ name: String, shape: [Int], values: [Float], type: GGMLType) {
        var data = [UInt8](repeating: 0, count: type.byteCount(elements: values.count))
        values.withUnsafeBufferPointer { src in
            data.withUnsafeMutableBytes { dst in
                switch type {
                case .f32: for (i, v) in src.enumerated() { dst.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                case .f16: for (i, v) in src.enumerated() { dst.storeBytes(of: HalfPrecision.f32ToF16(v).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                case .q8_0: Q8_0.quantize(src, into: dst)
                }
            }
        }
        tensors.append((name, shape, type, data))
    }

    /// The whole file.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func val(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): str(s)
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float64(let x): u64(x.bitPattern)
            case .array(let a):
                u32(a.first?.typeID ?? 8)
                u64(UInt64(a.count))
                for e in a { val(e) }
            }
        }
        out.append(contentsOf: [0x47, 0x47, 0x55, 0x46])  // "GGUF"
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(kv.count))
        for (k, v) in kv { str(k); u32(v.typeID); val(v) }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset = (offset + t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            str(t.name)
            u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { u64(UInt64(d)) }  // innermost first
            u32(t.type.rawValue)
            u64(UInt64(off))
        }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (t, off) in zip(tensors, offsets) {
            while out.count < dataStart + off { out.append(0) }
            out.append(contentsOf: t.data)
        }
        while out.count % alignment != 0 { out.append(0) }
        return out
    }
}
