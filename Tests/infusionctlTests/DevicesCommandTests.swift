import Foundation
import Testing

@Suite("infusionctl devices")
struct DevicesCommandTests {
    @Test("the built tool is found next to the tests")
    func toolFound() {
        #expect(CLI.tool.url != nil, "build infusionctl first: swift build --build-tests")
    }

    @Test("`devices --json` prints a JSON array (here, with no USB bus, usually []) and exits 0")
    func json() throws {
        let run = try CLI.run(["devices", "--json"])
        let output = run.stdout
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(output.utf8))
        guard let array = parsed as? [Any] else {
            Issue.record("not a JSON array: \(output)")
            return
        }
        for element in array {
            let object = element as? [String: Any]
            #expect(object?["status"] is String)
            #expect(object?["access"] is String)
            #expect(object?["sysPath"] is String)
        }
    }

    @Test("`devices --all --json` lists every hardware serial node as valid JSON too")
    func jsonAll() throws {
        let run = try CLI.run(["devices", "--all", "--json"])
        let output = run.stdout
        #expect(run.status == 0)
        #expect(try JSONSerialization.jsonObject(with: Data(output.utf8)) is [Any])
    }

    @Test("`devices` in text says plainly when there is nothing, and exits 0")
    func text() throws {
        let run = try CLI.run(["devices"])
        let output = run.stdout
        #expect(run.status == 0)
        #expect(!output.isEmpty)
        let json = try CLI.run(["devices", "--json"]).stdout
        if json.trimmingCharacters(in: .whitespacesAndNewlines) == "[]" {
            #expect(output.hasPrefix("No pumps, oximeters or serial adapters found."))
            #expect(output.contains("udev/README.md"))
        }
    }
}
