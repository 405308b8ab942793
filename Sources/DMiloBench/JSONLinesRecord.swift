import Foundation

/// A benchmark record kept one JSON object per line, so that shards append as they go and a killed run resumes
/// (the quality and uncertainty benchmarks).
protocol JSONLinesRecord: Codable {
    /// How an error names a line that does not decode ("a quality record").
    static var recordKind: String { get }
}

extension JSONLinesRecord {
    func jsonLine() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        return try enc.encode(self) + Data("\n".utf8)
    }

    static func read(path: String) throws -> [Self] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("\(path): cannot read") }
        return try text.split(separator: "\n").enumerated().map { i, line in
            do { return try JSONDecoder().decode(Self.self, from: Data(line.utf8)) } catch { throw CLIError("\(path): line \(i + 1) is not \(recordKind) (\(error))") }
        }
    }
}
