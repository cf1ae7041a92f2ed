import CommandLineTestSupport
import Foundation
import Testing

/// Runs the built `infusionctl` binary, as a clinician or a script would.
enum CLI {
    /// The `infusionctl` executable next to the test bundle (SwiftPM builds it: the test target depends on it).
    static let tool = BuiltTool("infusionctl")

    static func run(_ arguments: [String]) throws -> BuiltTool.Run {
        try tool.run(arguments)
    }

    static let validate = ["program", "validate", "--profile", "ketamine-chronic-pain", "--drug", "Ketamine", "--duration", "40 min"]

    static func json(_ run: BuiltTool.Run) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
        return try #require(object as? [String: Any])
    }
}

@Suite("infusionctl program validate")
struct ProgramValidateCLITests {
    @Test("80 kg at 0.35 mg/kg/h of 1 mg/mL: accepted, 28 mL/h, exit 0")
    func accepted() throws {
        let run = try CLI.run(CLI.validate + ["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/h"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("ACCEPTED"))
        #expect(run.stdout.contains("Pump rate        28 mL/h"))
        #expect(run.stdout.contains("18.667 mL"))
        #expect(run.stdout.contains("0.233 mg/kg"))
    }

    @Test("--json prints the documented object")
    func json() throws {
        let run = try CLI.run(CLI.validate + ["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/h", "--json"])
        #expect(run.status == 0)
        let object = try CLI.json(run)
        #expect(object["status"] as? String == "accepted")
        #expect(object["pumpRate_mL_per_h"] as? Double == 28)
        #expect(abs((object["vtbi_mL"] as? Double ?? 0) - 56.0 / 3.0) < 1e-9)
        #expect(abs((object["cumulativeDose_mg_per_kg"] as? Double ?? 0) - 0.35 * 40 / 60) < 1e-12)
        #expect((object["findings"] as? [Any])?.isEmpty == true)
    }

    @Test("over the soft maximum: needs confirmation, exit 2, finding cites R-DL-05")
    func soft() throws {
        let run = try CLI.run(CLI.validate + ["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "0.6 mg/kg/h", "--json"])
        #expect(run.status == 2)
        let object = try CLI.json(run)
        #expect(object["status"] as? String == "needs-confirmation")
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.contains { $0["rule"] as? String == "R-DL-05" && $0["severity"] as? String == "soft" && ($0["message"] as? String)?.isEmpty == false })
    }

    @Test("hard limits: exit 3", arguments: [
        ["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "1.2 mg/kg/h"],        // over the hard maximum
        ["--concentration", "2 mg/mL", "--weight", "150 kg", "--dose", "0.9 mg/kg/h"],       // over the absolute cap
        ["--concentration", "50 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/h"],      // vial strength
        ["--concentration", "100 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/h"],
        ["--concentration", "1 mg/mL", "--dose", "0.35 mg/kg/h"],                            // no weight
        ["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "28 mL/h"],            // outside the library
    ])
    func hard(arguments: [String]) throws {
        let run = try CLI.run(CLI.validate + arguments + ["--json"])
        #expect(run.status == 3)
        let object = try CLI.json(run)
        #expect(object["status"] as? String == "rejected")
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.contains { $0["severity"] as? String == "hard" })
    }

    @Test("usage errors: exit 64 with a message naming the accepted units", arguments: [
        (["--concentration", "1 mg/mL", "--weight", "80", "--dose", "0.35 mg/kg/h"], "kg"),
        (["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/day"], "mg/kg/h"),
        (["--concentration", "1 mg/mL", "--weight", "80 kg"], "--dose"),
        (["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/h", "--loading", "0.2 mg/kg"], "--loading-over"),
    ])
    func usage(arguments: [String], mention: String) throws {
        let run = try CLI.run(CLI.validate + arguments)
        #expect(run.status == 64)
        #expect(run.stderr.contains(mention))
    }

    @Test("a tampered library: rejected under R-DL-11, exit 3")
    func tamperedLibrary() throws {
        let shipped = try String(contentsOf: ProgramValidateCLITests.shippedLibrary, encoding: .utf8)
        let tampered = shipped.replacingOccurrences(of: "dose_rate_hard_max = \"1.0 mg/kg/h\"", with: "dose_rate_hard_max = \"5 mg/kg/h\"")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tampered-\(UUID()).toml")
        try tampered.write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        let run = try CLI.run(CLI.validate + ["--library", path.path, "--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/h", "--json"])
        #expect(run.status == 3)
        let findings = try #require(try CLI.json(run)["findings"] as? [[String: Any]])
        #expect(findings.first?["rule"] as? String == "R-DL-11")
        #expect((findings.first?["message"] as? String)?.contains("checksum mismatch") == true)
    }

    static let shippedLibrary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")
}

@Suite("infusionctl library")
struct LibraryCLITests {
    @Test("check accepts the shipped library and refuses a broken one with line and fix")
    func check() throws {
        let ok = try CLI.run(["library", "check", ProgramValidateCLITests.shippedLibrary.path])
        #expect(ok.status == 0)
        #expect(ok.stdout.hasPrefix("OK: InfusionControl default drug library"))
        let shipped = try String(contentsOf: ProgramValidateCLITests.shippedLibrary, encoding: .utf8)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("broken-\(UUID()).toml")
        try shipped.replacingOccurrences(of: "dose_rate_soft_max = \"0.5 mg/kg/h\"", with: "dose_rate_soft_max = \"2 mg/kg/h\"")
            .write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        let broken = try CLI.run(["library", "check", path.path])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("checksum mismatch"))
        // Sealing a library whose limits are inconsistent is refused, and the file stays unsealed.
        let seal = try CLI.run(["library", "seal", path.path])
        #expect(seal.status == 1)
        #expect(seal.stderr.contains("dose_rate_soft_max is above dose_rate_hard_max"))
        #expect(try CLI.run(["library", "check", path.path]).status == 1)
    }

    @Test("seal makes an approved edit loadable")
    func seal() throws {
        let shipped = try String(contentsOf: ProgramValidateCLITests.shippedLibrary, encoding: .utf8)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("edit-\(UUID()).toml")
        try shipped.replacingOccurrences(of: "version = \"2026.11.0\"", with: "version = \"2026.11.1\"").write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        #expect(try CLI.run(["library", "check", path.path]).status == 1)
        #expect(try CLI.run(["library", "seal", path.path]).status == 0)
        let check = try CLI.run(["library", "check", path.path])
        #expect(check.status == 0)
        #expect(check.stdout.contains("2026.11.1"))
    }

    @Test("show prints the profile's limits; an unknown profile is a usage error")
    func show() throws {
        let run = try CLI.run(["library", "show", "--profile", "ketamine-chronic-pain"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("Ketamine, chronic pain (outpatient infusion suite)"))
        #expect(run.stdout.contains("hard max 1 mg/kg/h"))
        #expect(run.stdout.contains("absolute cap 100 mg/h"))
        #expect(try CLI.run(["library", "show", "--profile", "icu"]).status == 64)
    }
}
