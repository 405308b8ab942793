// Deterministic randomness. Every random object in dmilo (initial noise, masks, CS matrices, motion kernels,
// measurement noise) is drawn from a SeededRandom derived from the job's seed and a purpose label, so one
// seed reproduces a whole run and changing how one part draws does not shift the others.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// xoshiro256** seeded through SplitMix64, with Box–Muller Gaussians.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spareGaussian: Double? = nil

    /// A generator for `seed`; `stream` names the purpose ("init-noise", "mask", ...) so streams are independent.
    public init(seed: UInt64, stream: String = "") {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the stream label, mixed into the seed
        for b in stream.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        var sm = seed ^ h
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9e37_79b9_7f4a_7c15
            var z = x
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        s = (splitmix(&sm), splitmix(&sm), splitmix(&sm), splitmix(&sm))
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal N(0, 1).
    public mutating func gaussian() -> Double {
        if let g = spareGaussian { spareGaussian = nil; return g }
        var u1 = uniform()
        while u1 <= 0 { u1 = uniform() }
        let u2 = uniform()
        let r = (-2 * log(u1)).squareRoot()
        spareGaussian = r * sin(2 * Double.pi * u2)
        return r * cos(2 * Double.pi * u2)
    }

    /// Fills `x` with N(0, sigma²) samples.
    public mutating func fillGaussian(_ x: UnsafeMutablePointer<Float>, count: Int, sigma: Float = 1) {
        for i in 0..<count { x[i] = Float(gaussian()) * sigma }
    }

    /// A tensor of N(0, 1) samples.
    public mutating func gaussianTensor(shape: [Int]) -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        fillGaussian(t.data, count: t.count)
        return t
    }
}
