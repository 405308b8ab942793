import XCTest
@testable import DMiloImage

final class DMiloImageSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
