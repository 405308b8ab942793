import XCTest
@testable import DMiloOperators

final class DMiloOperatorsSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
