// PNGError: why a PNG file could not be read or written, as one sentence that names the file.

/// A PNG file could not be read or written. `message` is one readable sentence naming the file;
/// `code` is the stable error code used in `failed/NAME/error.json` (INTERFACE "Results").
public struct PNGError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No file at the path.
        case missing
        /// The file exists but could not be read (permissions, a directory, I/O error).
        case unreadable
        /// The bytes do not start with a PNG signature and IHDR chunk.
        case notPNG
        /// The header is valid but the image exceeds the caller's `PNGLimits`; nothing was decoded.
        case tooLarge
        /// libpng rejected the data (truncated, bad CRC, bad zlib stream...); its message is in `message`.
        case corrupt
        /// A valid PNG this reader will not turn into samples (see `PNGImage.read`).
        case unsupported
        /// The file could not be written.
        case unwritable
    }

    public let kind: Kind
    /// The file concerned (as given by the caller).
    public let path: String
    /// One readable sentence naming the file.
    public let message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    /// Stable code for error.json: `file.missing`, `file.unreadable`, `image.too_large`, `file.unwritable`.
    public var code: String {
        switch kind {
        case .missing: return "file.missing"
        case .tooLarge: return "image.too_large"
        case .unwritable: return "file.unwritable"
        case .unreadable, .notPNG, .corrupt, .unsupported: return "file.unreadable"
        }
    }

    public var description: String { message }
}

/// Limits checked against the PNG header before any pixel memory is allocated, so a tiny file that claims
/// 100000×100000 pixels is refused cheaply (a "decompression bomb").
public struct PNGLimits: Sendable, Equatable {
    public var maxWidth: Int
    public var maxHeight: Int
    /// Upper bound on width × height.
    public var maxPixels: Int
    /// Upper bound on the file size in bytes (the file is read into memory whole).
    public var maxFileBytes: Int

    public init(maxWidth: Int = 16384, maxHeight: Int = 16384, maxPixels: Int = 1 << 26, maxFileBytes: Int = 1 << 30) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
    }

    /// 16384 × 16384 at most, 2^26 pixels, 1 GiB files.
    public static let standard = PNGLimits()
}
