import XCTest
@testable import DMiloFormats

final class DMiloFormatsSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
