import XCTest
@testable import DMiloModel

final class DMiloModelSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
