import XCTest
@testable import DMiloSolvers

final class DMiloSolversSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
