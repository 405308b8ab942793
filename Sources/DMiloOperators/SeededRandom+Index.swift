import DMiloKernels

extension SeededRandom {
    /// Uniform integer in [0, n) by Lemire's multiply-and-reject method, written out here (rather than
    /// `Int.random(in:using:)`) so masks and kernels stay identical across Swift standard-library versions.
    mutating func index(below n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }
}
