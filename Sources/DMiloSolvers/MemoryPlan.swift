/// Plans a solver's memory before it starts (the design card: DMILO's peak is one step's forward+VJP, whatever N).
///
/// Bytes = resident weights + (tapes held at once) × (one forward+VJP's activations and scratch). DMILO/DMILO-PGD
/// hold `layerSpan` tapes (1 unless asked), DMPlug N, DPS 1, the baseline none. A memory budget too small even
/// for the minimum is refused with `memory.budget` before any work.
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
    ///   - budgetBytes: nil = unlimited.
    public static func plan(_ p: SolverParameters, stepBytes: Int, residentBytes: Int, budgetBytes: Int?) throws -> Plan {
        let tapes: Int
        switch p.method {
        case .dmilo, .dmiloPGD: tapes = max(1, min(p.layerSpan, p.steps))
        case .dmplug: tapes = p.steps
        case .dps: tapes = 1
        case .baseline: tapes = 0
        }
        let need = residentBytes + tapes * stepBytes
        if let budget = budgetBytes, need > budget {
            let mb = { (b: Int) in String(format: "%.1f MB", Double(b) / 1_048_576) }
            throw SolverError(code: "memory.budget",
                              message: "\(p.method.rawValue) with \(p.steps) steps needs \(mb(need)) (\(tapes) × \(mb(stepBytes)) activations + \(mb(residentBytes)) weights), over the memory budget of \(mb(budget))")
        }
        return Plan(layerSpan: p.method == .dmplug ? p.steps : max(tapes, 1), replicas: max(tapes, 1), estimatedBytes: need)
    }
}
