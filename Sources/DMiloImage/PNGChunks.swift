// PNGChunks: the little of the PNG container we parse ourselves, before libpng sees the bytes.
//
// Two jobs (PNG spec, ISO/IEC 15948 §5):
// 1. Read IHDR so size limits are enforced before any pixel buffer exists (libpng's own limit is 1,000,000
//    pixels per side, far too generous for an edge box).
// 2. Drop the colour-space chunks (gAMA, sRGB, iCCP, cHRM). libpng's simplified API converts samples between
//    the file's declared encoding and its output encoding (8-bit = sRGB, 16-bit = linear). Our convention is
//    that the stored sample values ARE the data (INTERFACE: v -> 2v/(2^b-1)-1), so no conversion may happen.
//    Without those chunks libpng assumes 8-bit files are sRGB and 16-bit files linear (png.h,
//    PNG_IMAGE_FLAG_16BIT_sRGB), i.e. exactly the encodings it outputs, and passes samples through unchanged.
//    Removing ancillary chunks leaves every other chunk's CRC valid.

/// The IHDR fields of a PNG file.
public struct PNGHeader: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// 1, 2, 4, 8 or 16 as stored in the file.
    public let bitDepth: Int
    /// 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    public let colorType: Int
    public let interlaced: Bool
}

enum PNGChunks {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Chunks whose presence makes libpng's simplified API rewrite sample values.
    static let colourSpaceChunks: Set<String> = ["gAMA", "sRGB", "iCCP", "cHRM"]

    static func be32(_ b: [UInt8], _ i: Int) -> Int {
        Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
    }

    /// Parses the signature and IHDR (the first chunk). Does not check the CRC; libpng does that later.
    static func header(_ b: [UInt8], path: String) throws -> PNGHeader {
        guard b.count >= 8, Array(b[0..<8]) == signature else {
            throw PNGError(.notPNG, path: path, "\(path) is not a PNG file (no PNG signature).")
        }
        guard b.count >= 8 + 8 + 13 + 4 else {
            throw PNGError(.corrupt, path: path, "PNG file \(path) is truncated: it ends inside the IHDR header.")
        }
        guard be32(b, 8) == 13, String(decoding: b[12..<16], as: UTF8.self) == "IHDR" else {
            throw PNGError(.notPNG, path: path, "PNG file \(path) is corrupt: the first chunk is not a 13-byte IHDR.")
        }
        let h = PNGHeader(
            width: be32(b, 16), height: be32(b, 20), bitDepth: Int(b[24]), colorType: Int(b[25]),
            interlaced: b[28] != 0)
        guard h.width > 0, h.height > 0 else {
            throw PNGError(.corrupt, path: path, "PNG file \(path) is corrupt: IHDR size is \(h.width)x\(h.height).")
        }
        return h
    }

    /// The same PNG stream without colour-space chunks. Stops rewriting (copying the rest verbatim) at IEND or at
    /// the first malformed chunk, so libpng still sees, and reports, any damage.
    static func removingColourSpaceChunks(_ b: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(b.count)
        out.append(contentsOf: b[0..<min(8, b.count)])
        var i = 8
        while i + 12 <= b.count {
            let length = be32(b, i)
            let end = i + 12 + length
            guard length <= 0x7FFF_FFFF, end <= b.count else { break }
            let type = String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self)
            if !colourSpaceChunks.contains(type) { out.append(contentsOf: b[i..<end]) }
            i = end
            if type == "IEND" { break }
        }
        if i < b.count { out.append(contentsOf: b[i...]) }
        return out
    }
}
