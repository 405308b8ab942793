/// Plans a solver's memory before it starts (the design card: DMILO's peak is one step's forward+VJP, whatever N).
///
/// Bytes = resident weights + (tapes held at once) × (one forward+VJP's activations and scratch).
/// DMILO/DMILO-PGD hold `layerSpan` tapes (1 unless asked), DMPlug N, DPS 1, the baseline none; every tape beyond
/// the first lives in its own model replica, which has its own workspace but shares the weights (`ModelPool`), so
/// the weights count once. A memory budget too small even for the minimum is refused with `memory.budget` before
/// any work.
///
/// Every product is computed with overflow-reporting arithmetic: the inputs come from a client's manifest
/// (`solver.steps` may be 870058519462), and a wrapped estimate would pass any budget check.
public enum MemoryPlan {
    public struct Plan: Sendable, Equatable {
        /// DDIM steps per ILO layer (= model replicas needed).
        public var layerSpan: Int
        /// Model replicas (separate activation workspaces) the solver needs.
        public var replicas: Int
        public var estimatedBytes: Int
    }

    /// - Parameters:
    ///   - stepBytes: `NoisePredictor.vjpMemoryBytes(batch: 1)`.
    ///   - residentBytes: weights and other fixed memory.
    ///   - budgetBytes: nil = unlimited (the daemon always passes one; see `MachineMemory`).
    public static func plan(_ p: SolverParameters, stepBytes: Int, residentBytes: Int, budgetBytes: Int?) throws -> Plan {
        guard p.steps >= 1, stepBytes >= 0, residentBytes >= 0 else {
            throw SolverError(code: "solver.invalid", message: "\(p.method.rawValue): steps must be >= 1 (got \(p.steps))")
        }
        let tapes: Int
        switch p.method {
        case .dmilo, .dmiloPGD: tapes = max(1, min(p.layerSpan, p.steps))
        case .dmplug: tapes = p.steps
        case .dps: tapes = 1
        // DAPS keeps no tape, but its forward runs K chains as one batch (or one sub-batch per core, each in its own
        // replica): K one-item workspaces bound that from above either way.
        case .daps: tapes = max(1, p.samples)
        case .baseline: tapes = 0
        }
        let replicas = max(tapes, 1)
        let mb = { (b: Int) in String(format: "%.1f MB", Double(b) / 1_048_576) }
        guard let need = bytesNeeded(tapes: tapes, stepBytes: stepBytes, residentBytes: residentBytes) else {
            throw SolverError(
                code: "memory.budget",
                message: "\(p.method.rawValue) with \(p.steps) steps needs more memory than can be addressed (\(tapes) × \(mb(stepBytes)) activations + \(mb(residentBytes)) shared weights)")
        }
        if let budget = budgetBytes, need > budget {
            throw SolverError(
                code: "memory.budget",
                message:
                    "\(p.method.rawValue) with \(p.steps) steps needs \(mb(need)) (\(tapes) × \(mb(stepBytes)) activations + \(mb(residentBytes)) shared weights), over the memory budget of \(mb(budget))"
            )
        }
        return Plan(layerSpan: p.method == .dmplug ? p.steps : replicas, replicas: replicas, estimatedBytes: need)
    }

    /// residentBytes + tapes × stepBytes, or nil when it does not fit in an Int.
    public static func bytesNeeded(tapes: Int, stepBytes: Int, residentBytes: Int) -> Int? {
        let (a, o1) = tapes.multipliedReportingOverflow(by: stepBytes)
        let (s, o2) = a.addingReportingOverflow(residentBytes)
        return o1 || o2 ? nil : s
    }
}
