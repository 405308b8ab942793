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
        var line = "<\(priority(level))>\(escaped(message))"
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            let s = escaped("\(v)")
            line += s.contains(" ") || s.contains("\"") ? " \(escaped(k))=\"\(s.replacingOccurrences(of: "\"", with: "\\x22"))\"" : " \(escaped(k))=\(s)"
        }
        return line + "\n"
    }

    /// One physical line whatever a client put in a job name, file name or manifest string: control characters
    /// (newline, carriage return, escape, NUL, DEL, C1 controls), backslashes and the Unicode line separators
    /// are written as `\xNN` / `\u{NNNN}`, so a manifest named `x\n<0>FORGED.json` cannot start a journal line of its
    /// own at another priority, nor colour or rewrite a terminal.
    public static func escaped(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u.value {
            case 0x5C: out += "\\x5c"
            case 0..<0x20, 0x7F: out += String(format: "\\x%02x", u.value)
            case 0x80..<0xA0, 0x2028, 0x2029, 0xFFFD: out += String(format: "\\u{%04x}", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out
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
