// PNGReader: PNG file -> PNGImage through libpng's simplified API (png_image), the only libpng API usable from
// Swift (the low-level one needs setjmp; docs/platform.md §2).
//
// Sample fidelity: output 8-bit for 8-bit (and palette / 1-, 2-, 4-bit) files and 16-bit "linear" for 16-bit
// files, after removing colour-space chunks (PNGChunks), so libpng never applies a gamma curve. Sub-byte gray
// is widened by bit replication (v·255/(2^b−1)), which is the same value in model units.
// Alpha: 8-bit colour samples come back unassociated and are kept as stored; the alpha channel is dropped.
// For 16-bit files libpng always premultiplies ("associated alpha", png.h), which destroys the raw samples
// wherever alpha < 65535, so such files are refused; fully opaque 16-bit alpha files read exactly.

import CPNG
import DMiloKernels
import Foundation

extension PNGImage {
    /// Reads a PNG file (8- or 16-bit; gray, gray+alpha, RGB, RGBA or palette; interlaced or not) as 1 (gray)
    /// or 3 (RGB) channels of raw samples at bit depth 8 or 16. The header is checked against `limits` before
    /// any pixel memory is allocated. Errors name `path`; libpng's own message is included where it has one.
    public static func read(from path: String, limits: PNGLimits = .standard) throws -> PNGImage {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PNGError(.missing, path: path, "PNG file \(path) does not exist.")
        }
        guard !isDirectory.boolValue else { throw PNGError(.unreadable, path: path, "\(path) is a directory, not a PNG file.") }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > limits.maxFileBytes {
            throw PNGError(.tooLarge, path: path, "PNG file \(path) has \(size) bytes, more than the limit of \(limits.maxFileBytes).")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PNGError(.unreadable, path: path, "PNG file \(path) could not be read: \(error.localizedDescription)")
        }
        return try decode([UInt8](data), path: path, limits: limits)
    }

    /// Decodes PNG bytes already in memory; `path` is only used in error messages.
    public static func decode(_ bytes: [UInt8], path: String, limits: PNGLimits = .standard) throws -> PNGImage {
        guard bytes.count <= limits.maxFileBytes else {
            throw PNGError(.tooLarge, path: path, "PNG file \(path) has \(bytes.count) bytes, more than the limit of \(limits.maxFileBytes).")
        }
        let header = try PNGChunks.header(bytes, path: path)
        try check(header, against: limits, path: path)
        let clean = PNGChunks.removingColourSpaceChunks(bytes)
        return try clean.withUnsafeBytes { raw in try decodeWithLibpng(raw, header: header, path: path) }
    }

    /// Refuses oversized headers. Width and height are < 2^31 (4-byte fields), so the product cannot overflow Int.
    static func check(_ h: PNGHeader, against limits: PNGLimits, path: String) throws {
        if h.width > limits.maxWidth || h.height > limits.maxHeight || h.width * h.height > limits.maxPixels {
            throw PNGError(
                .tooLarge, path: path,
                "PNG file \(path) is \(h.width)x\(h.height) pixels, over the limit of "
                    + "\(limits.maxWidth)x\(limits.maxHeight) and \(limits.maxPixels) pixels; it was not decoded.")
        }
    }

    private static func decodeWithLibpng(_ raw: UnsafeRawBufferPointer, header: PNGHeader, path: String) throws -> PNGImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
            throw PNGError(.corrupt, path: path, "PNG file \(path) is corrupt or truncated (libpng: \(libpngMessage(&image))).")
        }
        defer { png_image_free(&image) }  // no-op once png_image_finish_read has cleaned up
        let width = Int(image.width), height = Int(image.height)
        guard width == header.width, height == header.height else {
            throw PNGError(.corrupt, path: path, "PNG file \(path): libpng reports \(width)x\(height), IHDR says \(header.width)x\(header.height).")
        }
        let fileFormat = image.format
        let color = fileFormat & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = fileFormat & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        let sixteen = fileFormat & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
        let channels = color ? 3 : 1
        let stored = channels + (alpha ? 1 : 0)
        // No COLORMAP flag: palette files are expanded to RGB(A) by libpng.
        image.format =
            (color ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | (alpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
            | (sixteen ? UInt32(PNG_FORMAT_FLAG_LINEAR) : 0)
        let rowStride = width * stored
        guard rowStride <= Int(Int32.max) else {
            throw PNGError(.tooLarge, path: path, "PNG file \(path): rows of \(width) pixels are too long to decode.")
        }

        var samples = [UInt16](repeating: 0, count: width * height * channels)
        let failed: Bool
        if sixteen {
            var buffer = [UInt16](repeating: 0, count: rowStride * height)
            failed = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(rowStride), nil) } == 0
            if !failed {
                if alpha, let p = stride(from: channels, to: buffer.count, by: stored).first(where: { buffer[$0] != 65535 }) {
                    let pixel = p / stored
                    throw PNGError(
                        .unsupported, path: path,
                        "PNG file \(path) is a 16-bit image with transparency (pixel x=\(pixel % width), y=\(pixel / width) "
                            + "has alpha \(buffer[p])); libpng premultiplies 16-bit alpha, so the stored samples cannot be "
                            + "recovered exactly. Remove the alpha channel.")
                }
                dropAlpha(from: buffer, stored: stored, channels: channels, into: &samples)
            }
        } else {
            var buffer = [UInt8](repeating: 0, count: rowStride * height)
            failed = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(rowStride), nil) } == 0
            if !failed { dropAlpha(from: buffer, stored: stored, channels: channels, into: &samples) }
        }
        if failed {
            throw PNGError(.corrupt, path: path, "PNG file \(path) is corrupt or truncated (libpng: \(libpngMessage(&image))).")
        }
        return try PNGImage(width: width, height: height, channels: channels, bitDepth: sixteen ? 16 : 8, samples: samples)
    }

    private static func dropAlpha<T: BinaryInteger>(from buffer: [T], stored: Int, channels: Int, into samples: inout [UInt16]) {
        let pixels = samples.count / channels
        for p in 0..<pixels {
            for c in 0..<channels { samples[p * channels + c] = UInt16(buffer[p * stored + c]) }
        }
    }
}

/// The text of `png_image.message` (a char[64], imported as a tuple).
func libpngMessage(_ image: inout png_image) -> String {
    withUnsafeBytes(of: &image.message) { raw in
        let bytes = raw.prefix { $0 != 0 }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.isEmpty ? "no message" : text
    }
}

extension PNGHeader {
    /// The IHDR of the PNG file at `path`, reading only its first 33 bytes: lets a caller check a measurement's
    /// size and colour type against the job before decoding anything.
    public static func read(from path: String) throws -> PNGHeader {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let missing = !FileManager.default.fileExists(atPath: path)
            throw PNGError(
                missing ? .missing : .unreadable, path: path,
                missing ? "PNG file \(path) does not exist." : "PNG file \(path) could not be opened.")
        }
        defer { try? handle.close() }
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try handle.read(upToCount: 33) ?? Data())
        } catch {
            throw PNGError(.unreadable, path: path, "PNG file \(path) could not be read: \(error.localizedDescription)")
        }
        return try PNGChunks.header(bytes, path: path)
    }

    /// The IHDR of PNG bytes already in memory (nothing is decoded).
    public static func parse(_ bytes: [UInt8], path: String) throws -> PNGHeader {
        try PNGChunks.header(bytes, path: path)
    }

    /// Channels `PNGImage.read` returns for this colour type: 3 for RGB, RGBA and palette, else 1.
    public var channels: Int { colorType == 2 || colorType == 3 || colorType == 6 ? 3 : 1 }
    /// Bit depth of `PNGImage.read`'s samples: 16 for 16-bit files, else 8.
    public var sampleBitDepth: Int { bitDepth == 16 ? 16 : 8 }
}
