import Foundation
import XCTest

@testable import DMiloKernels

/// Timestep embeddings against values worked out from the diffusers formulas, and against float32 outputs printed by
/// diffusers 0.42.1 itself (`get_timestep_embedding`, `GaussianFourierProjection`; commands in each test).
///
/// get_timestep_embedding(t, dim, flip, shift), half = dim/2:
///   freq_i = exp(−ln(10000)·i/(half − shift)) = 10000^(−i/(half − shift)),  emb = [sin(t·freq), cos(t·freq)],
///   flip → [cos, sin].  For dim 8 (half 4):
///   shift 0: freq = 1, 0.1, 0.01, 0.001            (10000^(−i/4))
///   shift 1: freq = 1, 0.0464158883, 0.00215443469, 0.0001   (10000^(−i/3))
final class TimestepEmbeddingTests: XCTestCase {
    func embed(_ t: [Float], dim: Int, flip: Bool, shift: Float, scale: Float = 1, maxPeriod: Float = 10000) -> [[Float]] {
        let out = Tensor(shape: [t.count, dim], repeating: .nan)
        TimestepEmbedding.sinusoidal(
            timesteps: t, dim: dim, flipSinToCos: flip, downscaleFreqShift: shift,
            scale: scale, maxPeriod: maxPeriod, out: out.data)
        return (0..<t.count).map { Array(out.array[($0 * dim)..<(($0 + 1) * dim)]) }
    }

    /// Hand values: t = 0 gives sin 0 = 0, cos 0 = 1; t = 1 gives sin/cos of the frequencies themselves;
    /// t = 999 gives sin/cos(999·freq) (Float64 values; float32 arguments near 999 carry ~3e-5 rounding → 2e-5 tol).
    func testSinusoidalHandValues() {
        let freqs: [Float: [Double]] = [0: [1, 0.1, 0.01, 0.001], 1: [1, 0.046415888336127774, 0.0021544346900318825, 1e-4]]
        for shift: Float in [0, 1] {
            for flip in [false, true] {
                let e = embed([0, 1, 999], dim: 8, flip: flip, shift: shift)
                for (row, t) in [0.0, 1.0, 999.0].enumerated() {
                    let f = freqs[shift]!
                    let sins = f.map { Foundation.sin(t * $0) }, coss = f.map { Foundation.cos(t * $0) }
                    let expected = flip ? coss + sins : sins + coss
                    assertClose(
                        e[row], expected, rtol: 0, atol: row == 2 ? 2e-5 : 1e-6,
                        "t=\(t) flip=\(flip) shift=\(shift)")
                }
            }
        }
        // literal spot checks written out by hand: sin(1) = 0.841470985, cos(0.1) = 0.995004165, sin(999) = −0.0264607527
        let e = embed([1, 999], dim: 8, flip: false, shift: 0)
        XCTAssertEqual(e[0][0], 0.841470985, accuracy: 1e-6)
        XCTAssertEqual(e[0][5], 0.995004165, accuracy: 1e-6)
        XCTAssertEqual(e[1][0], -0.0264607527, accuracy: 2e-5)
    }

    /// diffusers float32 output for t = 999, dim 8, flip False/shift 0 and flip True/shift 1:
    /// python -c "import torch; from diffusers.models.embeddings import get_timestep_embedding as g;
    ///            print(g(torch.tensor([999.]), 8, flip_sin_to_cos=False, downscale_freq_shift=0).tolist())"
    func testSinusoidalMatchesDiffusersFloat32() {
        let a = embed([999], dim: 8, flip: false, shift: 0)[0]
        let da: [Double] = [
            -0.02646075189113617, -0.5899291038513184, -0.5356031656265259, 0.8409302234649658,
            0.9996498227119446, 0.8074550628662109, -0.8444697856903076, 0.541143536567688,
        ]
        assertClose(a, da, rtol: 0, atol: 1e-6, "diffusers flip=False shift=0")
        let b = embed([999], dim: 8, flip: true, shift: 1)[0]
        let db: [Double] = [
            0.9996498227119446, -0.7286733388900757, -0.549264669418335, 0.9950141310691833,
            -0.02646075189113617, 0.684861421585083, 0.8356484770774841, 0.09973391145467758,
        ]
        assertClose(b, db, rtol: 0, atol: 1e-6, "diffusers flip=True shift=1")
        // odd dim, scale and max_period: g(torch.tensor([0.,1.,999.]), 7, flip_sin_to_cos=True,
        //                                 downscale_freq_shift=1, scale=2.0, max_period=100)
        let c = embed([0, 1, 999], dim: 7, flip: true, shift: 1, scale: 2, maxPeriod: 100)
        let dc: [[Double]] = [
            [1, 1, 1, 0, 0, 0, 0],
            [
                -0.416146844625473, 0.9800665974617004, 0.9998000264167786, 0.9092974066734314,
                0.19866931438446045, 0.019998665899038315, 0,
            ],
            [
                0.998599648475647, 0.30396732687950134, 0.42625856399536133, -0.05290297418832779,
                -0.9526824355125427, 0.9046013951301575, 0,
            ],
        ]
        for r in 0..<3 { assertClose(c[r], dc[r], rtol: 0, atol: 2e-6, "diffusers odd dim row \(r)") }
    }

    /// GaussianFourierProjection(embedding_size=3, log=True) with weight [0.5, −1.25, 2], t = [0.5, 1, 80]:
    /// proj = log(t)·w·2π, out = [sin, cos] (flip: [cos, sin]); t = 1 → log 0 → [0,0,0,1,1,1].
    func testFourierMatchesFormulaAndDiffusers() {
        let w: [Float] = [0.5, -1.25, 2], t: [Float] = [0.5, 1, 80]
        for flip in [false, true] {
            let out = Tensor(shape: [3, 6], repeating: .nan)
            w.withUnsafeBufferPointer { wp in
                TimestepEmbedding.fourier(timesteps: t, weight: wp.baseAddress!, half: 3, flipSinToCos: flip, out: out.data)
            }
            for (r, tv) in t.enumerated() {
                let proj = w.map { Foundation.log(Double(tv)) * Double($0) * 2 * Double.pi }
                let s = proj.map { Foundation.sin($0) }, c = proj.map { Foundation.cos($0) }
                assertClose(
                    Array(out.array[(r * 6)..<(r * 6 + 6)]), flip ? c + s : s + c, rtol: 0, atol: 2e-6,
                    "fourier t=\(tv) flip=\(flip)")
            }
            // diffusers float32 row for t = 80, flip False; the arguments reach |proj| ≈ 55 where one float32 ulp is
            // 3.8e-6, and torch's vectorised log/sin may round differently from glibc by that ulp
            if !flip {
                assertClose(
                    Array(out.array[12..<18]),
                    [
                        0.9321016669273376, -0.14069190621376038, -0.9961038827896118,
                        0.3621967136859894, -0.9900534152984619, 0.08818741142749786,
                    ],
                    rtol: 0, atol: 8e-6, "fourier diffusers t=80")
            }
        }
    }
}
