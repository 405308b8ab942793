// Helpers shared by the DMiloImage tests: fixture paths, a scratch directory, CRC-32 for hand-made chunks.

import Foundation
import XCTest

enum Fixtures {
    /// Tests/DMiloImageTests/Fixtures as copied into the test bundle.
    static var root: URL {
        get throws {
            try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "Fixtures missing from bundle")
        }
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try root.appendingPathComponent(name))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

/// A fresh temporary directory, removed when the test case finishes.
func scratchDirectory(_ test: XCTestCase) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmilo-image-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir.path
}

/// CRC-32 (ISO-HDLC, as in PNG and zlib), bitwise; used to craft valid chunks by hand.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
    }
    return ~c
}

/// One PNG chunk: length, type, data, CRC over type+data.
func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typeBytes = Array(type.utf8)
    let body = typeBytes + data
    return be32(UInt32(data.count)) + body + be32(crc32(body))
}

func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
