import DMiloJobs
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Builds the runner for a config (the real one loads the model named by `config.model`). Throw a
/// ``SpoolError`` (or any error) with a one-line reason when the model cannot be used.
public typealias RunnerLoader = @Sendable (DaemonConfig) throws -> any JobRunner

/// The daemon as a swift-service-lifecycle `Service`: runs ``SpoolDaemon`` on its own thread, maps graceful
/// shutdown (SIGTERM/SIGINT via the ServiceGroup) to ``SpoolDaemon/requestStop()`` and SIGHUP to `onReload`.
public struct DaemonService: Service {
    let daemon: SpoolDaemon
    let onReload: @Sendable () -> Void
    let onStarted: @Sendable () -> Void

    /// `onStarted` runs once the signal handlers are in place (send READY=1 there, not earlier: a SIGHUP
    /// before the handler exists would kill the process).
    public init(daemon: SpoolDaemon, onReload: @escaping @Sendable () -> Void, onStarted: @escaping @Sendable () -> Void = {}) {
        self.daemon = daemon
        self.onReload = onReload
        self.onStarted = onStarted
    }

    public func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hup.setEventHandler(handler: onReload)
        hup.resume()
        defer { hup.cancel() }
        onStarted()
        let daemon = self.daemon
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    let t = Thread {
                        daemon.run()
                        done.resume()
                    }
                    t.name = "dmilod-main"
                    t.start()
                }
            } onGracefulShutdown: {
                daemon.requestStop()
            }
        } onCancel: {
            daemon.requestStop()
        }
    }
}
