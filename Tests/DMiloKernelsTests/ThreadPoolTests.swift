// The worker pool and per-thread budgets: coverage of every index, nested loops, concurrent jobs with different
// budgets, and the split GEMM against a plain triple loop in double precision.

import DMiloKernels
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ThreadPoolTests: XCTestCase {
    /// Every index of every chunking runs exactly once, including more chunks than cores.
    func testChunkedVisitsEveryIndexOnce() {
        for budget in [1, 2, 3, 8] {
            Threading.withBudget(budget) {
                for n in [0, 1, 2, 7, 64, 1001] {
                    for chunks in [1, 2, 3, 16] {
                        var hits = [Int32](repeating: 0, count: n)
                        hits.withUnsafeMutableBufferPointer { h in
                            let p = h.baseAddress
                            Parallel.chunked(n, chunks: chunks) { i in p![i] += 1 }
                        }
                        XCTAssertEqual(hits, [Int32](repeating: 1, count: n), "budget \(budget) n \(n) chunks \(chunks)")
                    }
                    var hits = [Int32](repeating: 0, count: n)
                    hits.withUnsafeMutableBufferPointer { h in
                        let p = h.baseAddress
                        Parallel.forEach(n, work: 1 << 30) { i in p![i] += 1 }
                    }
                    XCTAssertEqual(hits, [Int32](repeating: 1, count: n))
                }
            }
        }
    }

    /// A parallel loop inside a parallel loop's body covers the product once and runs its inner loops serially.
    func testNestedLoopsCoverTheProductOnce() {
        Threading.withBudget(4) {
            let outer = 9, inner = 37
            var hits = [Int32](repeating: 0, count: outer * inner)
            var innerBudgets = [Int](repeating: 0, count: outer)
            hits.withUnsafeMutableBufferPointer { h in
                innerBudgets.withUnsafeMutableBufferPointer { b in
                    let p = h.baseAddress, bp = b.baseAddress
                    Parallel.forEach(outer, work: 1 << 30) { o in
                        bp![o] = Threading.count
                        Parallel.forEach(inner, work: 1 << 30) { i in p![o * inner + i] += 1 }
                    }
                }
            }
            XCTAssertEqual(hits, [Int32](repeating: 1, count: outer * inner))
            XCTAssertEqual(innerBudgets, [Int](repeating: 1, count: outer), "chunks run with budget 1")
        }
    }

    /// Two jobs on their own threads with budgets 1 and 3: each sees its own budget throughout, the budget-1 job
    /// never leaves its thread, the budget-3 job never uses more than 3 threads per loop, and both sum correctly.
    func testConcurrentJobsKeepTheirOwnBudgets() {
        final class Report: @unchecked Sendable {
            var budgetsSeen: Set<Int> = [], maxThreadsPerLoop = 0, sums: [Double] = [], foreignThreads = 0
        }
        func job(budget: Int, report: Report, done: DispatchSemaphore) -> Thread {
            Thread {
                Threading.withBudget(budget) {
                    let me = pthread_self()
                    for round in 0..<200 {
                        report.budgetsSeen.insert(Threading.count)
                        let n = 64
                        var owners = [pthread_t](repeating: me, count: n)
                        var values = [Double](repeating: 0, count: n)
                        owners.withUnsafeMutableBufferPointer { ow in
                            values.withUnsafeMutableBufferPointer { va in
                                let op = ow.baseAddress, vp = va.baseAddress
                                Parallel.forEach(n, work: 1 << 30) { i in
                                    op![i] = pthread_self()
                                    vp![i] = Double(i * (round + 1))
                                }
                            }
                        }
                        var distinct: [pthread_t] = []
                        for o in owners where !distinct.contains(where: { pthread_equal($0, o) != 0 }) { distinct.append(o) }
                        report.maxThreadsPerLoop = max(report.maxThreadsPerLoop, distinct.count)
                        if budget == 1 && distinct.contains(where: { pthread_equal($0, me) == 0 }) { report.foreignThreads += 1 }
                        report.sums.append(values.reduce(0, +))
                    }
                }
                done.signal()
            }
        }
        let a = Report(), b = Report(), done = DispatchSemaphore(value: 0)
        job(budget: 1, report: a, done: done).start()
        job(budget: 3, report: b, done: done).start()
        done.wait(); done.wait()
        XCTAssertEqual(a.budgetsSeen, [1])
        XCTAssertEqual(b.budgetsSeen, [3])
        XCTAssertEqual(a.foreignThreads, 0, "a budget-1 job runs on its own thread")
        XCTAssertEqual(a.maxThreadsPerLoop, 1)
        XCTAssertLessThanOrEqual(b.maxThreadsPerLoop, 3)
        let expected = (0..<200).map { Double(63 * 64 / 2 * ($0 + 1)) }
        XCTAssertEqual(a.sums, expected)
        XCTAssertEqual(b.sums, expected)
    }

    /// `withBudget` restores the previous budget, also when its body throws; threads without one use the default.
    func testWithBudgetRestoresOnThrow() {
        struct Boom: Error {}
        let outside = Threading.count
        Threading.withBudget(5) { () -> Void in
            XCTAssertEqual(Threading.count, 5)
            do {
                try Threading.withBudget(2) { () throws -> Void in
                    XCTAssertEqual(Threading.count, 2)
                    throw Boom()
                }
                XCTFail("no throw")
            } catch {}
            XCTAssertEqual(Threading.count, 5)
        }
        XCTAssertEqual(Threading.count, outside)
        XCTAssertEqual(Threading.withBudget(0) { Threading.count }, 1, "budgets are clamped to one thread")
        XCTAssertEqual(Threading.automaticThreads(jobs: 1), Threading.onlineCores())
        XCTAssertEqual(Threading.automaticThreads(jobs: 1000), 1)
    }

    /// The GEMM split over columns and over rows, with every transpose and ragged block edges, matches a
    /// double-precision triple loop; beta accumulates into C exactly once.
    func testSplitGEMMMatchesTripleLoop() {
        var rng = SeededRandom(seed: 3, stream: "gemm")
        for (m, n, k) in [(70, 300, 90), (300, 50, 80), (17, 33, 700), (1, 1, 1)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = (0..<(m * k)).map { _ in Float(rng.gaussian()) }
                    let b = (0..<(k * n)).map { _ in Float(rng.gaussian()) }
                    let c0 = (0..<(m * n)).map { _ in Float(rng.gaussian()) }
                    let lda = transA ? m : k, ldb = transB ? k : n
                    func A(_ i: Int, _ p: Int) -> Double { Double(transA ? a[p * lda + i] : a[i * lda + p]) }
                    func B(_ p: Int, _ j: Int) -> Double { Double(transB ? b[j * ldb + p] : b[p * ldb + j]) }
                    for budget in [1, 2, 3] {
                        var c = c0
                        Threading.withBudget(budget) {
                            c.withUnsafeMutableBufferPointer { cp in
                                ParallelGEMM.sgemm(
                                    transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a,
                                    lda: lda, b: b, ldb: ldb, beta: 2, c: cp.baseAddress!, ldc: n)
                            }
                        }
                        var worst = 0.0
                        for i in 0..<m {
                            for j in 0..<n {
                                var s = 0.0
                                for p in 0..<k { s += A(i, p) * B(p, j) }
                                let ref = 0.5 * s + 2 * Double(c0[i * n + j])
                                worst = max(worst, abs(Double(c[i * n + j]) - ref) / (1 + abs(ref)))
                            }
                        }
                        XCTAssertLessThan(worst, 1e-4, "m \(m) n \(n) k \(k) tA \(transA) tB \(transB) budget \(budget)")
                    }
                }
            }
        }
    }
}
