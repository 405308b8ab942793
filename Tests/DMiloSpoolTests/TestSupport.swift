import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A temporary spool folder with helpers to drop jobs the way clients do (data first, manifest last, via rename).
final class TempSpool: @unchecked Sendable {
    let root: URL
    var path: String { root.path }

    init() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("dmilod-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("incoming"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("calibration"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tmp"), withIntermediateDirectories: true)
    }

    /// A spool at an existing folder (e.g. a tmpfs mount); the folder is emptied, not removed, at the end.
    init(existing: URL) {
        root = existing
        ownsRoot = false
    }
    private var ownsRoot = true

    deinit { if ownsRoot { try? FileManager.default.removeItem(at: root) } }

    func url(_ rel: String) -> URL { root.appendingPathComponent(rel) }

    /// A tiny valid NPY (float32, shape (2,2)).
    static let npy: Data = {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xff), UInt8(header.count >> 8)])
        d += Data(header.utf8)
        d += Data(repeating: 0, count: 16)
        return d
    }()

    /// Writes `data` to incoming/NAME atomically (tmp/ then rename).
    func drop(_ name: String, _ data: Data) throws {
        let tmp = url("tmp/.\(name).\(UUID().uuidString)")
        try data.write(to: tmp)
        guard rename(tmp.path, url("incoming/\(name)").path) == 0 else { throw NSError(domain: "rename", code: Int(errno)) }
    }

    /// Drops a good job: NAME.npy then NAME.json.
    func dropGoodJob(_ name: String, extra: String = "") throws {
        try drop("\(name).npy", TempSpool.npy)
        try drop("\(name).json", Data(#"{"version": 1, "measurement": "\#(name).npy", "operator": {"type": "denoise"}\#(extra)}"#.utf8))
    }

    func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url(dir).path)) ?? []).sorted()
    }

    func visible(_ dir: String) -> [String] { list(dir).filter { !$0.hasPrefix(".") } }

    func errorJSON(_ job: String) -> [String: Any]? {
        guard let d = try? Data(contentsOf: url("failed/\(job)/error.json")) else { return nil }
        return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
    }
}

/// The test-only `dmilod-test` executable (dmilod plus `--test-runner`) built beside the test bundle; `product`
/// finds the real `dmilod` (which has no test hook).
enum DaemonBinary {
    nonisolated(unsafe) static var name = "dmilod-test"
    static var path: String? { find(name) }
    static var product: String? { find("dmilod") }
    static var repo: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func find(_ name: String) -> String? {
        var candidates: [URL] = []
        if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent()) }
        for b in Bundle.allBundles { candidates.append(b.bundleURL.deletingLastPathComponent()) }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(repo.appendingPathComponent(".build/debug"))
        for dir in candidates {
            let p = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func require() throws -> String {
        guard let p = path else {
            // `swift test` builds every product, so a missing binary is a real failure, not a reason to skip.
            throw NSError(domain: "dmilod", code: 1, userInfo: [NSLocalizedDescriptionKey: "dmilod-test binary not found beside the tests (swift build --product dmilod-test)"])
        }
        return p
    }
}

/// A launched dmilod process with captured stderr.
final class DaemonProcess {
    let process = Process()
    let stderrURL: URL
    var pid: Int32 { process.processIdentifier }

    init(_ args: [String], environment: [String: String] = [:], executable: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: try executable ?? DaemonBinary.require())
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "WATCHDOG_USEC")
        env.removeValue(forKey: "WATCHDOG_PID")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        stderrURL = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dmilod-stderr-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: stderrURL)
    }

    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for exit up to `timeout` seconds; returns the status or nil on timeout.
    @discardableResult
    func wait(timeout: Double = 30) -> Int32? {
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < end { usleep(10_000) }
        if process.isRunning { return nil }
        return process.terminationStatus
    }

    /// Runs dmilod to completion (for --once runs).
    static func run(
        _ args: [String], timeout: Double = 60, environment: [String: String] = [:],
        executable: String? = nil
    ) throws -> (status: Int32?, stderr: String) {
        let p = try DaemonProcess(args, environment: environment, executable: executable)
        let s = p.wait(timeout: timeout)
        return (s, p.stderr)
    }
}

/// Polls `condition` every 10 ms up to `timeout` seconds.
@discardableResult
func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A unix datagram socket standing in for systemd's NOTIFY_SOCKET.
final class NotifyListener {
    let path: String
    private let fd: Int32
    private(set) var messages: [(time: Date, text: String)] = []

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in path.utf8.enumerated() where i < buf.count - 1 { buf[i] = b }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, r == 0 else { throw NSError(domain: "bind", code: Int(errno)) }
        var tv = timeval(tv_sec: 0, tv_usec: 20_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Receives for `seconds`, appending to `messages`.
    func drain(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            let n = recv(fd, &buf, buf.count, 0)
            if n > 0 { messages.append((Date(), String(decoding: buf[0..<n], as: UTF8.self))) }
        }
    }
}
