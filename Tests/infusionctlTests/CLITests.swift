import CommandLineTestSupport
import Foundation
import InfusionCore
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
        // It may be confirmed and run: its pump rate and volume are shown for the clinician to confirm.
        #expect(object["pumpRate_mL_per_h"] as? Double == 48)
        #expect(object["vtbi_mL"] as? Double == 32)
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
        // Nothing that could be programmed into a pump.
        for key in ["pumpRate_mL_per_h", "pumpRateRequested_mL_per_h", "vtbi_mL", "totalVolume_mL", "loading", "deliveredDoseRate_mg_per_kg_per_h"] {
            #expect(object[key] == nil || object[key] is NSNull, "a rejected program shows \(key): \(run.stdout)")
        }
    }

    @Test("a rejected program, in text: no pump rate, volume or loading rate to copy into a pump; the findings stay",
          arguments: [["--dose", "1.2 mg/kg/h"], ["--dose", "1.2 mg/kg/h", "--loading", "0.2 mg/kg", "--loading-over", "10 min"]])
    func rejectedShowsNoPumpProgram(arguments: [String]) throws {
        let run = try CLI.run(CLI.validate + ["--concentration", "1 mg/mL", "--weight", "80 kg"] + arguments)
        #expect(run.status == 3)
        let out = run.stdout
        let program = try #require(out.components(separatedBy: "  Findings:").first)
        #expect(!program.contains("mL/h") && !program.contains(" mL") && !program.contains("96"), "\(out)")
        for label in ["Pump rate", "Volume (VTBI)", "Loading dose", "Cumulative dose", "Duration"] {
            #expect(!program.contains(label), "\(label) shown for a rejected program:\n\(out)")
        }
        #expect(program.contains("  Pump program     none: a rejected program must not be programmed; change it and validate again\n"), "\(out)")
        #expect(out.contains("[HARD] R-DL-04: dose rate 1.2 mg/kg/h is above the hard maximum 1 mg/kg/h"), "\(out)")
        let json = try CLI.json(try CLI.run(CLI.validate + ["--concentration", "1 mg/mL", "--weight", "80 kg"] + arguments + ["--json"]))
        #expect(json["status"] as? String == "rejected")
        #expect(json["pumpRate_mL_per_h"] == nil && json["loading"] == nil, "\(json)")
    }

    @Test("over the soft maximum, in text: NEEDS CONFIRMATION, exit 2, the program and the finding naming its limit")
    func softHuman() throws {
        let run = try CLI.run(CLI.validate + ["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "0.6 mg/kg/h"])
        #expect(run.status == 2)
        let out = run.stdout
        #expect(out.hasPrefix("Program NEEDS CONFIRMATION (soft limit: a clinician must confirm with a reason)\n"), "\(out)")
        #expect(out.contains("  Pump rate        48 mL/h\n"))
        #expect(out.contains("  Volume (VTBI)    32 mL\n"))
        #expect(out.contains("  Cumulative dose  0.4 mg/kg (32 mg)\n"))
        #expect(out.hasSuffix("""
              Findings:
                [soft] R-DL-05: dose rate 0.6 mg/kg/h is above the soft maximum 0.5 mg/kg/h for Ketamine: \
            confirm with a reason, or reduce the dose

            """), "\(out)")
        #expect(!out.contains("[HARD]") && !out.contains("ACCEPTED") && !out.contains("REJECTED"))
    }

    @Test("hard limits, in text: REJECTED, exit 3, every finding with its rule and limit", arguments: [
        (["--concentration", "1 mg/mL", "--weight", "80 kg", "--dose", "1.2 mg/kg/h"],
         ["[HARD] R-DL-04: dose rate 1.2 mg/kg/h is above the hard maximum 1 mg/kg/h for Ketamine: it cannot be overridden; reduce the dose"]),
        (["--concentration", "2 mg/mL", "--weight", "150 kg", "--dose", "0.9 mg/kg/h"],
         ["[HARD] R-DL-04: 0.9 mg/kg/h × 150 kg = 135 mg/h is above the absolute cap 100 mg/h for Ketamine regardless of weight: reduce the dose",
          "[soft] R-DL-05: dose rate 0.9 mg/kg/h is above the soft maximum 0.5 mg/kg/h for Ketamine: confirm with a reason, or reduce the dose"]),
        (["--concentration", "50 mg/mL", "--weight", "80 kg", "--dose", "0.35 mg/kg/h"],
         ["[HARD] R-DL-01: Ketamine 50 mg/mL is not an allowed concentration in Ketamine, chronic pain (outpatient infusion suite): only 1 mg/mL or 2 mg/mL may be infused"]),
        (["--concentration", "1 mg/mL", "--dose", "0.35 mg/kg/h"],
         ["[HARD] R-DL-02: patient weight is required for weight-based Ketamine dosing: enter it in kg"]),
    ])
    func hardHuman(arguments: [String], findings: [String]) throws {
        let run = try CLI.run(CLI.validate + arguments)
        #expect(run.status == 3)
        let out = run.stdout
        #expect(out.hasPrefix("Program REJECTED (hard limit: no override)\n"), "\(out)")
        #expect(out.hasSuffix("  Findings:\n" + findings.map { "    \($0)\n" }.joined()), "\(out)")
        #expect(!out.contains("ACCEPTED") && !out.contains("NEEDS CONFIRMATION"))
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

    @Test("show --library FILE shows that file's library, not the shipped one; a broken or missing file is refused")
    func showCustomFile() throws {
        let shipped = try String(contentsOf: ProgramValidateCLITests.shippedLibrary, encoding: .utf8)
        var custom = shipped
        for (old, new) in [
            ("name = \"InfusionControl default drug library\"", "name = \"Test clinic library\""),
            ("version = \"2026.11.0\"", "version = \"2027.1.0\""),
            ("id = \"ketamine-chronic-pain\"", "id = \"ketamine-test-ward\""),
            ("name = \"Ketamine, chronic pain (outpatient infusion suite)\"", "name = \"Ketamine, test ward\""),
            ("care_area = \"Outpatient infusion suite\"", "care_area = \"Test ward\""),
            ("concentrations = [\"1 mg/mL\", \"2 mg/mL\"]", "concentrations = [\"1 mg/mL\"]"),
            ("dose_rate_hard_max = \"1.0 mg/kg/h\"", "dose_rate_hard_max = \"0.8 mg/kg/h\""),
        ] {
            #expect(custom.contains(old), "shipped library lacks \(old)")
            custom = custom.replacingOccurrences(of: old, with: new)
        }
        custom = LibraryChecksum.seal(text: custom)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("custom-\(UUID()).toml").path
        try custom.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let run = try CLI.run(["library", "show", "--library", path])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.components(separatedBy: "\n")
        #expect(lines.first == "Test clinic library, version 2027.1.0")
        #expect(lines.dropFirst().first == "sha256 \(LibraryChecksum.compute(text: custom))  (\(path))")
        #expect(lines.contains("Profile ketamine-test-ward: Ketamine, test ward"))
        #expect(lines.contains("  Care area: Test ward"))
        #expect(lines.contains("    Concentrations: 1 mg/mL (anything else is rejected)"))
        #expect(lines.contains("    Dose rate (mg/kg/h): hard min none, soft min 0.1 mg/kg/h, soft max 0.5 mg/kg/h, hard max 0.8 mg/kg/h; absolute cap 100 mg/h"))
        #expect(!run.stdout.contains("InfusionControl default drug library") && !run.stdout.contains("ketamine-chronic-pain"))

        // --profile picks from that file, by name too; the shipped profile is not in it.
        let byName = try CLI.run(["library", "show", "--library", path, "--profile", "Ketamine, test ward"])
        #expect(byName.status == 0)
        #expect(byName.stdout == run.stdout)
        let absent = try CLI.run(["library", "show", "--library", path, "--profile", "ketamine-chronic-pain"])
        #expect(absent.status == 64)
        #expect(absent.stderr.contains("no profile \"ketamine-chronic-pain\" in Test clinic library 2027.1.0"), "\(absent.stderr)")
        #expect(absent.stderr.contains("profiles: ketamine-test-ward"), "\(absent.stderr)")

        // An unsealed edit of that file is refused, naming the file and line; so is a missing file.
        try custom.replacingOccurrences(of: "dose_rate_hard_max = \"0.8 mg/kg/h\"", with: "dose_rate_hard_max = \"5 mg/kg/h\"")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let tampered = try CLI.run(["library", "show", "--library", path])
        #expect(tampered.status == 1)
        #expect(tampered.stdout.isEmpty)
        let sealLine = custom.components(separatedBy: "\n").firstIndex { $0.hasPrefix("sha256 =") }.map { $0 + 1 } ?? 0
        #expect(tampered.stderr.contains("\(path):\(sealLine): library.sha256: checksum mismatch"), "\(tampered.stderr)")
        let missing = try CLI.run(["library", "show", "--library", path + ".absent"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no drug library at \(path).absent"))
    }
}
