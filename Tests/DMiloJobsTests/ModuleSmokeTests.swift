import XCTest
@testable import DMiloJobs

final class DMiloJobsSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
