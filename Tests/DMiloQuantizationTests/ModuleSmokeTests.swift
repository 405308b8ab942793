import XCTest
@testable import DMiloQuantization

final class DMiloQuantizationSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
