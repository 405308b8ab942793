// `dmilo bench unet --profile`: where a pass's time goes, per op kind (OpProfile timers in the kernels). Runs the
// passes again with the timers on (their cost, two clock reads per kernel call, stays out of the latency table).

import DMiloKernels

enum BenchUNetProfile {
    /// Median-free totals over `iterations` runs of `pass`: milliseconds per pass for each kind, and the whole pass.
    static func measure(iterations: Int, _ pass: () throws -> Void) rethrows -> (kinds: [OpKind: Double], total: Double) {
        OpProfile.start()
        let t0 = now()
        for _ in 0..<iterations { try pass() }
        let total = (now() - t0) * 1e3 / Double(iterations)
        let kinds = OpProfile.stop().mapValues { $0 * 1e3 / Double(iterations) }
        return (kinds, total)
    }

    /// Prints one table: a row per kind, a column per pass.
    static func printTable(_ passes: [(name: String, kinds: [OpKind: Double], total: Double)]) {
        print("| op kind | " + passes.map { "\($0.name) ms | %" }.joined(separator: " | ") + " |")
        print("|---|" + String(repeating: "---|---|", count: passes.count))
        func row(_ label: String, _ value: (Int) -> Double) {
            let cells = passes.indices.map { i -> String in
                let v = value(i)
                return String(format: "%.2f | %.0f %%", v, 100 * v / passes[i].total)
            }
            print("| \(label) | " + cells.joined(separator: " | ") + " |")
        }
        for k in OpKind.allCases { row(k.label) { passes[$0].kinds[k] ?? 0 } }
        row("elementwise and other (rest)") { i in passes[i].total - passes[i].kinds.values.reduce(0, +) }
        row("whole pass (profiled)") { passes[$0].total }
    }
}
