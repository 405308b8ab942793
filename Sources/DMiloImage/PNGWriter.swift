// PNGWriter: PNGImage -> PNG bytes / file through libpng's simplified API.
//
// png_image_write_* always adds colour-space chunks (sRGB for 8-bit, gAMA 1.0 for 16-bit "linear"). The 16-bit
// gAMA 1.0 would make viewers that honour it (browsers) show our sRGB-like reconstructions far too bright, and
// neither chunk is part of our value convention, so both are removed (PNGChunks): the files say nothing about
// colour space and PNGImage.read gets the same samples back.

import CPNG
import DMiloKernels
import Foundation

extension PNGImage {
    /// The PNG encoding of this image (8- or 16-bit, gray or RGB, non-interlaced, no colour-space chunks).
    public func encoded() throws -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = (channels == 3 ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | (bitDepth == 16 ? UInt32(PNG_FORMAT_FLAG_LINEAR) : 0)
        let rowStride = Int32(width * channels)
        let eight = bitDepth == 8 ? samples.map { UInt8(truncatingIfNeeded: $0) } : []

        func write(_ memory: UnsafeMutableRawPointer?, _ size: inout Int) -> Int32 {
            if bitDepth == 16 {
                return samples.withUnsafeBytes { png_image_write_to_memory(&image, memory, &size, 0, $0.baseAddress, rowStride, nil) }
            }
            return eight.withUnsafeBytes { png_image_write_to_memory(&image, memory, &size, 0, $0.baseAddress, rowStride, nil) }
        }
        // First call measures, second writes (png.h: memory may be NULL to get the size).
        var size = 0
        guard write(nil, &size) != 0, size > 0 else {
            throw PNGError(.unwritable, path: "<memory>", "PNG encoding failed (libpng: \(libpngMessage(&image))).")
        }
        var out = [UInt8](repeating: 0, count: size)
        let ok = out.withUnsafeMutableBytes { write($0.baseAddress, &size) }
        guard ok != 0 else {
            throw PNGError(.unwritable, path: "<memory>", "PNG encoding failed (libpng: \(libpngMessage(&image))).")
        }
        out.removeSubrange(size...)
        return PNGChunks.removingColourSpaceChunks(out)
    }

    /// Writes the PNG encoding to `path` (replacing it; not atomic — callers that need atomicity write to a
    /// temporary name and rename).
    public func write(to path: String) throws {
        let bytes = try encoded()
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw PNGError(.unwritable, path: path, "PNG file \(path) could not be written: \(error.localizedDescription)")
        }
    }
}
