// Test support: random buffers, Float64 reference evaluation and central-difference VJP checks.
//
// Every kernel gets a plain Float64 scalar reference `f` written here from the PyTorch definition. The kernel's
// forward must match `f`; the kernel's backwardInput g = Jᵀc must match central differences of L(x) = ⟨c, f(x)⟩
// elementwise and along a random direction, and must also match a directional difference of the Float32 kernel
// forward itself (so forward and backward of the SAME implementation agree).

import XCTest

@testable import DMiloKernels

/// `n` N(0, 1) floats from a seeded stream.
func randn(_ n: Int, seed: UInt64, sigma: Float = 1) -> [Float] {
    var r = SeededRandom(seed: seed, stream: "kernel-test")
    return (0..<n).map { _ in Float(r.gaussian()) * sigma }
}

/// Runs `body` with mutable pointers to copies of `arrays`, then returns the (possibly modified) copies.
func withPointers(_ arrays: [[Float]], _ body: ([UnsafeMutablePointer<Float>]) -> Void) -> [[Float]] {
    let tensors = arrays.map { a -> Tensor in a.isEmpty ? Tensor(shape: [0]) : Tensor(shape: [a.count], values: a) }
    body(tensors.map { $0.data })
    return tensors.map { $0.array }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
func toD(_ a: [Float]) -> [Double] { a.map(Double.init) }

/// Asserts |actual − expected| ≤ rtol·max|expected| + atol elementwise.
func assertClose(
    _ actual: [Float], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
    let scale = expected.map { abs($0) }.max() ?? 0
    var worst = 0.0, at = -1
    for (i, (a, e)) in zip(actual, expected).enumerated() where abs(Double(a) - e) > worst {
        worst = abs(Double(a) - e); at = i
    }
    XCTAssertLessThanOrEqual(
        worst, rtol * scale + atol,
        "\(what): max error \(worst) at \(at) (scale \(scale))", file: file, line: line)
}

/// Checks a kernel VJP `g` = Jᵀc at `x` against central differences of the Float64 reference `f`,
/// elementwise on up to `maxIndices` coordinates and along one random direction; then, when `kernel` is given,
/// against a directional central difference of the Float32 kernel forward.
func checkVJP(
    _ what: String, x: [Float], c: [Float], g: [Float], f: ([Double]) -> [Double],
    kernel: (([Float]) -> [Float])? = nil, h: Double = 1e-4, rtol: Double = 1e-4,
    maxIndices: Int = 80, file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(g.count, x.count, "\(what): gradient count", file: file, line: line)
    let xd = toD(x), cd = toD(c)
    func loss(_ xs: [Double]) -> Double { dot(cd, f(xs)) }
    // elementwise: every coordinate when small, a seeded sample otherwise
    var idx = Array(0..<x.count)
    if idx.count > maxIndices {
        var r = SeededRandom(seed: UInt64(x.count), stream: "fd-indices")
        idx.shuffle(using: &r)
        idx = Array(idx.prefix(maxIndices))
    }
    var fd = [Double](), got = [Double]()
    for i in idx {
        var xp = xd, xm = xd
        xp[i] += h; xm[i] -= h
        fd.append((loss(xp) - loss(xm)) / (2 * h))
        got.append(Double(g[i]))
    }
    let scale = max(fd.map { abs($0) }.max() ?? 0, 1e-3)
    for (k, i) in idx.enumerated() {
        XCTAssertEqual(
            got[k], fd[k], accuracy: rtol * scale + 1e-6,
            "\(what): d/dx[\(i)] kernel \(got[k]) vs FD \(fd[k])", file: file, line: line)
    }
    // directional: ⟨g, d⟩ vs (L(x + h d) − L(x − h d)) / 2h
    let d = toD(randn(x.count, seed: 991))
    let xp = zip(xd, d).map { $0 + h * $1 }, xm = zip(xd, d).map { $0 - h * $1 }
    let fdDir = (loss(xp) - loss(xm)) / (2 * h)
    let gDir = dot(toD(g), d)
    let dirScale = max(abs(fdDir), toD(g).map { $0 * $0 }.reduce(0, +).squareRoot())
    XCTAssertEqual(gDir, fdDir, accuracy: 1e-4 * dirScale + 1e-6, "\(what): directional", file: file, line: line)
    // the Float32 kernel's own forward, differenced in float (step 1e-2, hence the looser tolerance)
    if let kernel {
        let hf: Float = 1e-2
        let df = d.map { Float($0) }
        let yp = kernel(zip(x, df).map { $0 + hf * $1 }), ym = kernel(zip(x, df).map { $0 - hf * $1 })
        let fdK = (dot(cd, toD(yp)) - dot(cd, toD(ym))) / (2 * Double(hf))
        XCTAssertEqual(
            gDir, fdK, accuracy: 2e-3 * dirScale + 1e-4, "\(what): kernel-forward directional",
            file: file, line: line)
    }
}
