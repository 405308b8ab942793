import Foundation
import Logging

/// swift-log handler for systemd's journal: one line per event on stderr, prefixed with the sd-daemon(3)
/// priority `<N>` so `journalctl -p warning` works; metadata (JOB=, METHOD=, …) follows as `KEY=value`.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// sd-daemon.h priorities.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    public static func format(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "<\(priority(level))>\(message.replacingOccurrences(of: "\n", with: " "))"
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            let s = "\(v)"
            line += s.contains(" ") ? " \(k)=\"\(s)\"" : " \(k)=\(s)"
        }
        return line + "\n"
    }

    public func log(event: LogEvent) {
        log(level: event.level, message: event.message, metadata: event.metadata, source: event.source,
            file: event.file, function: event.function, line: event.line)
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        let text = JournalLogHandler.format(level: level, message: "\(message)", metadata: merged)
        FileHandle.standardError.write(Data(text.utf8))
    }
}
