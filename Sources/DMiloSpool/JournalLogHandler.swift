import CSystemd
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// swift-log handler for systemd's journal.
///
/// Under systemd (stderr is the journal: `JOURNAL_STREAM` holds stderr's device:inode, systemd.exec(5)) each event
/// goes through sd_journal_sendv(3) as one entry whose metadata keys are fields of their own (`JOB`, `METHOD`,
/// `OPERATOR`, `MODEL`, `ERROR_CODE`, `FIELD`, `UNET_EVALUATIONS`, `WALL_SECONDS`), so `journalctl JOB=x` finds a
/// job's entries; `MESSAGE` is the same readable line as on a terminal. Elsewhere (a terminal, a test, a pipe), or if
/// the journal refuses an entry, it is one line on stderr prefixed with the sd-daemon(3) priority `<N>` (journald's
/// stream parser reads it) with the metadata appended as `KEY=value`.
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
        "<\(priority(level))>\(text(message: message, metadata: metadata))\n"
    }

    /// The readable line: the escaped message, then `KEY=value` per metadata key in key order.
    public static func text(message: String, metadata: Logger.Metadata) -> String {
        var line = escaped(message)
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            let s = escaped("\(v)")
            line += s.contains(" ") || s.contains("\"") ? " \(escaped(k))=\"\(s.replacingOccurrences(of: "\"", with: "\\x22"))\"" : " \(escaped(k))=\(s)"
        }
        return line
    }

    /// A journal field name (journald drops others): A–Z, 0–9 and `_`, not starting with `_` (trusted fields) or a
    /// digit, at most 64 characters.
    static func isFieldName(_ k: String) -> Bool {
        guard let first = k.utf8.first, first != 0x5F, !(0x30...0x39).contains(first), k.utf8.count <= 64 else { return false }
        return k.utf8.allSatisfy { (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }

    /// The fields of one journal entry, `KEY=value` each, in this order: MESSAGE (the readable line), PRIORITY,
    /// SYSLOG_IDENTIFIER, then every metadata key that is a field name, in key order, with its value as given
    /// (sd_journal_sendv encodes newlines and other bytes itself, so nothing needs escaping there).
    public static func journalFields(
        level: Logger.Level, message: String, metadata: Logger.Metadata,
        identifier: String = "dmilod"
    ) -> [String] {
        var fields = [
            "MESSAGE=\(text(message: message, metadata: metadata))", "PRIORITY=\(priority(level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
        ]
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) where isFieldName(k) { fields.append("\(k)=\(v)") }
        return fields
    }

    /// True when stderr is a journal stream: `JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd for a unit whose
    /// stderr goes to the journal) names the file descriptor 2 we have.
    public static func stderrIsJournal(_ env: String? = ProcessInfo.processInfo.environment["JOURNAL_STREAM"]) -> Bool {
        guard let env else { return false }
        let parts = env.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        return fstat(STDERR_FILENO, &st) == 0 && UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    /// Decided once per process: log entries go to the journal's native socket.
    static let native = stderrIsJournal()

    /// journald's native socket (sd_journal_sendv has it built in).
    static let socketPath = "/run/systemd/journal/socket"

    /// Sends one entry through sd_journal_sendv(3); false when the journal did not take it. sd_journal_sendv reports
    /// success when the socket does not exist ("fail silently if the journal is not available"), so its absence is
    /// checked here: the event then goes to stderr instead of nowhere.
    static func send(_ fields: [String]) -> Bool {
        var st = stat()
        guard lstat(socketPath, &st) == 0 else { return false }
        let buffers = fields.map { Array($0.utf8) }
        var iov: [iovec] = []
        var owned: [UnsafeMutableRawPointer] = []
        defer { owned.forEach { free($0) } }
        for b in buffers {
            guard let p = malloc(max(b.count, 1)) else { return false }
            owned.append(p)
            b.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: b.count) }
            iov.append(iovec(iov_base: p, iov_len: b.count))
        }
        return iov.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) } >= 0
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
        log(
            level: event.level, message: event.message, metadata: event.metadata, source: event.source,
            file: event.file, function: event.function, line: event.line)
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        if JournalLogHandler.native,
            JournalLogHandler.send(JournalLogHandler.journalFields(level: level, message: "\(message)", metadata: merged))
        {
            return
        }
        let text = JournalLogHandler.format(level: level, message: "\(message)", metadata: merged)
        FileHandle.standardError.write(Data(text.utf8))
    }
}
