import DMiloFormats

/// The DDPM noise schedule the model was trained with: ᾱ_t = Π_{s≤t} (1 − β_s).
///
/// dmilo's solvers assume the schedule of the DMILO/DMPlug code (docs/algorithms.md §1.1): 1000 train steps,
/// linear β from 1e-4 to 0.02 computed in float32 like `torch.linspace`, epsilon prediction.
public struct NoiseSchedule: Sendable, Equatable {
    public let trainSteps: Int
    public let betaStart: Double
    public let betaEnd: Double
    public let betaSchedule: String
    /// ᾱ_t for t = 0..<trainSteps.
    public let alphasCumprod: [Double]

    public init(
        trainSteps: Int = 1000, betaStart: Double = 1e-4, betaEnd: Double = 0.02,
        betaSchedule: String = "linear"
    ) {
        self.trainSteps = trainSteps
        self.betaStart = betaStart
        self.betaEnd = betaEnd
        self.betaSchedule = betaSchedule
        let last = Float(max(trainSteps - 1, 1))
        var acc: Float = 1  // float32 cumprod like torch
        alphasCumprod = (0..<trainSteps).map { i in
            let beta: Float
            if betaSchedule == "scaled_linear" {  // diffusers: linspace(sqrt(start), sqrt(end))^2
                let a = Float(betaStart).squareRoot(), b = Float(betaEnd).squareRoot(), v = a + (b - a) * Float(i) / last
                beta = v * v
            } else {  // float32 linspace, as torch.linspace(..., dtype=float32)
                beta = Float(betaStart) + (Float(betaEnd) - Float(betaStart)) * Float(i) / last
            }
            acc *= 1 - beta
            return Double(acc)
        }
    }

    /// Largest train-step count accepted from a model file (published models use 1000–4000).
    public static let maxTrainSteps = 100_000
    /// β schedules this type computes.
    public static let betaSchedules = ["linear", "scaled_linear"]

    /// The schedule a model file states, checked before anything is allocated: a step count in 1…`maxTrainSteps`,
    /// finite β with 0 < β_start ≤ β_end < 1, a known β schedule. Errors name `file` and the key (`keyPrefix` +
    /// the diffusers name, e.g. "dmilo.schedule.num_train_timesteps").
    public init(
        validating trainSteps: Int, betaStart: Double, betaEnd: Double, betaSchedule: String, file: String,
        keyPrefix: String = ""
    ) throws {
        func fail(_ key: String, _ why: String) -> FormatError { FormatError(file: file, field: keyPrefix + key, why) }
        guard (1...Self.maxTrainSteps).contains(trainSteps) else {
            throw fail("num_train_timesteps", "\(trainSteps) is outside 1…\(Self.maxTrainSteps)")
        }
        for (key, v) in [("beta_start", betaStart), ("beta_end", betaEnd)] where !(v.isFinite && v > 0 && v < 1) {
            throw fail(key, "\(v) is not a finite value in (0, 1)")
        }
        guard betaStart <= betaEnd else { throw fail("beta_end", "\(betaEnd) is below beta_start \(betaStart)") }
        guard Self.betaSchedules.contains(betaSchedule) else {
            throw fail("beta_schedule", "\"\(betaSchedule)\" is not one of \(Self.betaSchedules)")
        }
        self.init(trainSteps: trainSteps, betaStart: betaStart, betaEnd: betaEnd, betaSchedule: betaSchedule)
    }

    /// ᾱ at timestep t; 1 for t < 0 (`set_alpha_to_one`).
    public func alphaBar(_ t: Int) -> Double { t < 0 ? 1.0 : alphasCumprod[t] }
}
