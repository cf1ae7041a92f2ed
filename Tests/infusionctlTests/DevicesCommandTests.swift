import Foundation
import Testing

/// Runs the built `infusionctl` binary, as a person would.
enum BuiltTool {
    /// The `infusionctl` executable next to the test bundle (.build/<triple>/debug/), or under .build/debug.
    static var url: URL? {
        var candidates: [URL] = []
        if let first = CommandLine.arguments.first {
            // The test runner is …/debug/InfusionControlPackageTests.xctest (or a file inside a bundle):
            // the tool is built into the same directory.
            var directory = URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(directory.appendingPathComponent("infusionctl"))
                directory.deleteLastPathComponent()
            }
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/infusionctl"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Runs the tool with `arguments`; returns exit status, standard output and standard error.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        guard let url else { throw CocoaError(.fileNoSuchFile) }
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }
}

@Suite("infusionctl devices")
struct DevicesCommandTests {
    @Test("the built tool is found next to the tests")
    func toolFound() {
        #expect(BuiltTool.url != nil, "build infusionctl first: swift build --build-tests")
    }

    @Test("`devices --json` prints a JSON array (here, with no USB bus, usually []) and exits 0")
    func json() throws {
        let (status, output, error) = try BuiltTool.run(["devices", "--json"])
        #expect(status == 0, "stderr: \(error)")
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
        let (status, output, _) = try BuiltTool.run(["devices", "--all", "--json"])
        #expect(status == 0)
        #expect(try JSONSerialization.jsonObject(with: Data(output.utf8)) is [Any])
    }

    @Test("`devices` in text says plainly when there is nothing, and exits 0")
    func text() throws {
        let (status, output, _) = try BuiltTool.run(["devices"])
        #expect(status == 0)
        #expect(!output.isEmpty)
        let (_, json, _) = try BuiltTool.run(["devices", "--json"])
        if json.trimmingCharacters(in: .whitespacesAndNewlines) == "[]" {
            #expect(output.hasPrefix("No pumps, oximeters or serial adapters found."))
            #expect(output.contains("udev/README.md"))
        }
    }
}
