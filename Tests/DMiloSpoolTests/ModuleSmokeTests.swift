import XCTest
@testable import DMiloSpool

final class DMiloSpoolSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
