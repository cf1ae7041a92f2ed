import Foundation
import Testing

@Suite("infusionctl calibrate, verify and configure")
struct CalibrationCLITests {
    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cli-calibration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test("configure profile saves the TOML profile, replaces by name, and prints the udev rule")
    func profile() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("devices.toml").path
        let first = try CLI.run(["configure", "profile", "--name", "pump0", "--protocol", "newera", "--serial", "A502NJ4X",
                                 "--vendor", "0403", "--product", "6001", "--baud", "19200", "--address", "0", "--file", file])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains(#"ENV{ID_VENDOR_ID}=="0403", ENV{ID_MODEL_ID}=="6001", ENV{ID_SERIAL_SHORT}=="A502NJ4X", \"#))
        #expect(first.stdout.contains(#"SYMLINK+="infusion/pump0""#))
        #expect(first.stdout.contains(#"ENV{INFUSION_ROLE}="syringe-pump", ENV{INFUSION_PROTOCOL}="newera", ENV{INFUSION_BAUD}="19200", ENV{INFUSION_ADDRESS}="0""#))
        let second = try CLI.run(["configure", "profile", "--name", "balance0", "--protocol", "mt-sics", "--port", "pci-0000:00:14.0-usb-0:2:1.0", "--file", file])
        #expect(second.status == 0 && second.stdout.contains(#"ENV{ID_PATH}=="pci-0000:00:14.0-usb-0:2:1.0""#))
        let again = try CLI.run(["configure", "profile", "--name", "pump0", "--protocol", "newera", "--kernel", "ttyS0", "--file", file])
        #expect(again.status == 0)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.components(separatedBy: "[[device]]").count == 3)
        #expect(text.contains("ttyS0") && !text.contains("A502NJ4X") && text.contains("mt-sics"))
    }

    @Test("configure profile refuses inconsistent input with a usage error")
    func profileRefusals() throws {
        let none = try CLI.run(["configure", "profile", "--name", "pump0", "--protocol", "newera", "--file", "/nonexistent/x.toml"])
        #expect(none.status == 64 && none.stderr.contains("exactly one of --serial, --port or --kernel"))
        let role = try CLI.run(["configure", "profile", "--name", "pump0", "--protocol", "newera", "--role", "oximeter", "--kernel", "ttyS0"])
        #expect(role.status == 64)
        let address = try CLI.run(["configure", "profile", "--name", "ox", "--protocol", "nonin-df7", "--kernel", "ttyS1", "--address", "3"])
        #expect(address.status == 64 && address.stderr.contains("has no addresses"))
    }

    @Test("calibrate pump validates its plan, then says clearly when the devices are not there")
    func calibratePump() throws {
        let bad = try CLI.run(["calibrate", "pump", "--device", "/dev/null", "--protocol", "newera", "--balance", "/dev/null",
                               "--rate", "25 mL/h", "--quick", "--duration", "60 min", "--operator", "tech"])
        #expect(bad.status == 64 && bad.stderr.contains("--quick"))
        let missing = try CLI.run(["calibrate", "pump", "--device", "/nonexistent/pump0", "--protocol", "newera", "--balance", "/nonexistent/balance0",
                                   "--rate", "25 mL/h", "--quick", "--operator", "tech"])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent/balance0 is not open"))
    }

    @Test("verify oximeter refuses a missing serial number and a non-oximeter protocol with usage errors")
    func verifyOximeter() throws {
        let run = try CLI.run(["verify", "oximeter", "--device", "/dev/null", "--protocol", "nonin-df7", "--operator", "tech"])
        #expect(run.status == 64 && run.stderr.contains("--oximeter-serial") && run.stderr.contains("label"))
        let wrong = try CLI.run(["verify", "oximeter", "--device", "/dev/null", "--protocol", "newera", "--operator", "tech"])
        #expect(wrong.status == 64)
    }
}
