import XCTest

@testable import DMiloModel

final class ArenaTests: XCTestCase {
    /// First pass overflows into separate blocks; reset folds the peak into one slab; later passes fit; buffers are
    /// 64-byte aligned and disjoint while live.
    func testGrowThenSteadyState() {
        let a = Arena()
        func pass() -> [UnsafeMutablePointer<Float>] {
            a.reset()
            let p = a.alloc(100), m = a.mark
            let q = a.alloc(1000)
            q.initialize(repeating: 2, count: 1000)
            p.initialize(repeating: 1, count: 100)
            XCTAssertEqual(q[999], 2)
            a.release(to: m)
            let r = a.alloc(500)
            return [p, q, r]
        }
        _ = pass()
        XCTAssertEqual(a.peak, 112 + 1008)  // rounded to 16 floats
        let ptrs = pass()
        XCTAssertEqual(a.reservedBytes, 4 * (112 + 1008))
        for p in ptrs { XCTAssertEqual(Int(bitPattern: p) % 64, 0) }
        XCTAssertEqual(ptrs[1], ptrs[2], "released space is reused")
        XCTAssertEqual(ptrs[1] - ptrs[0], 112, "bump allocation inside one slab")
        let before = a.reservedBytes
        _ = pass()
        XCTAssertEqual(a.reservedBytes, before)
    }
}
