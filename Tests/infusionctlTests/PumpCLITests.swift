import CommandLineTestSupport
import DeviceIO
import DeviceSimulators
import Foundation
import InfusionCore
import Testing

/// A simulated New Era pump hosted in THIS process on a real pseudo-terminal, so that a test can run the
/// `infusionctl` binary against it and then look at what the pump itself believes (running? at what rate?).
final class HostedNewEraPump: Sendable {
    let device: PTYHostedDevice<NewEraSimulatedPump>
    let path: String

    init(_ configuration: NewEraSimulatedPump.Configuration = .init()) throws {
        device = PTYHostedDevice(device: NewEraSimulatedPump(configuration: configuration), role: .pump,
                                 setup: HostedDeviceSetup(name: "pump0", clock: SystemMonotonicClock()))
        device.start()
        let deadline = ContinuousClock.now + .seconds(5)
        while device.devicePath == nil, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.002) }
        path = try #require(device.devicePath)
    }

    /// The simulated pump's state now.
    var state: NewEraSimulatedPump { device.inspect { $0 } }

    func inject(_ name: String, _ arguments: [String] = []) throws -> String {
        try device.inject(FaultCommand(name: name, arguments: arguments)).get()
    }

    deinit { device.stop() }
}

/// Waits (real time, polling every 5 ms) until `condition` holds; false if it still does not after `limit`.
func waitUntil(_ limit: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return condition()
}

/// `infusionctl pump identify|status|start|stop` run as a technician would, against a simulated New Era
/// pump on a real pty; what the commands print is checked against what the simulated pump reports.
@Suite("infusionctl pump against a simulated New Era pump on a pty", .serialized)
struct PumpCLITests {
    static func pump(_ subcommand: String, _ path: String, _ extra: [String] = []) throws -> BuiltTool.Run {
        try CLI.run(["pump", subcommand, "--device", path, "--protocol", "newera"] + extra)
    }

    @Test("identify prints the family, model and firmware; --json prints them as an object")
    func identify() throws {
        let sim = try HostedNewEraPump()
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let text = try Self.pump("identify", sim.path)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout == "newera NE1000, firmware 3.928\n")
        let json = try Self.pump("identify", sim.path, ["--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try CLI.json(json)
        #expect(object["family"] as? String == "newera")
        #expect(object["model"] as? String == "NE1000")
        #expect(object["firmware"] as? String == "3.928")
        #expect(object["serialNumber"] == nil, "New Era pumps report no serial number")
        #expect(sim.state.mode == .safe, "the driver armed safe mode (default 5 s)")
        #expect(sim.state.safeModeTimeoutSeconds == 5)
    }

    @Test("status of a pump at rest: state, rate, volume infused and alarms, as text and as JSON")
    func statusAtRest() throws {
        let sim = try HostedNewEraPump()
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let text = try Self.pump("status", sim.path, ["--safe-mode", "0"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout == "state: stopped\nrate: 0 mL/h\nvolume infused: 0 mL\nalarms: none\n")
        let json = try Self.pump("status", sim.path, ["--safe-mode", "0", "--json"])
        let object = try CLI.json(json)
        #expect(object["state"] as? String == "stopped")
        #expect(object["rateMillilitresPerHour"] as? Double == 0)
        #expect(object["volumeInfusedMillilitres"] as? Double == 0)
        #expect((object["alarms"] as? [Any])?.isEmpty == true)
        #expect(object["alarmPriority"] == nil)
        #expect(sim.state.mode == .basic, "--safe-mode 0 leaves the pump in basic mode")
    }

    @Test("start with a named syringe, a rate and a volume: the pump runs at that rate; status shows it; stop pauses, then stops")
    func startStatusStop() throws {
        let sim = try HostedNewEraPump()  // a 26.59 mm syringe at power-up
        let start = try Self.pump("start", sim.path, ["--safe-mode", "0", "--syringe", "terumo-20mL", "--rate", "360 mL/h", "--volume", "15 mL"])
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stdout == "syringe diameter: 20.15 mm\nrate: 360 mL/h\nvolume to infuse: 15 mL\nstarted: infusing\n")
        #expect(start.stderr.contains("note: Terumo 20 mL: 20.15 mm, source: New Era"), "\(start.stderr)")
        #expect(!start.stderr.contains("safe mode is on"), "no safe-mode warning in basic mode")
        var pump = sim.state
        #expect(pump.prompt == .infusing)
        #expect(pump.rate.volumeRate == .millilitresPerHour(360))
        #expect(pump.diameter.value == 20.15)
        #expect(pump.volumeTarget.value == 15 && pump.volumeUnit == .millilitres)
        #expect(pump.direction == .infuse)
        #expect(pump.mode == .basic)

        // 360 mL/h is 0.1 mL/s: let some go, then read it back between two readings of the pump itself.
        Thread.sleep(forTimeInterval: 0.3)
        let before = sim.state.infusedMillilitres
        let status = try Self.pump("status", sim.path, ["--safe-mode", "0", "--json"])
        let after = sim.state.infusedMillilitres
        #expect(status.status == 0, "\(status.stderr)")
        let object = try CLI.json(status)
        #expect(object["state"] as? String == "infusing")
        #expect(object["rateMillilitresPerHour"] as? Double == 360)
        let infused = try #require(object["volumeInfusedMillilitres"] as? Double)
        #expect(infused > 0.02, "0.3 s at 0.1 mL/s")
        #expect(infused >= before - 0.001 && infused <= after + 0.001, "\(before) ≤ \(infused) ≤ \(after) mL")

        let pause = try Self.pump("stop", sim.path, ["--safe-mode", "0"])
        #expect(pause.status == 0, "\(pause.stderr)")
        #expect(pause.stdout == "stopped: paused\n")
        pump = sim.state
        #expect(pump.prompt == .paused)
        let stop = try Self.pump("stop", sim.path, ["--safe-mode", "0"])
        #expect(stop.stdout == "stopped: stopped\n")
        #expect(sim.state.prompt == .stopped)
        let text = try Self.pump("status", sim.path, ["--safe-mode", "0"])
        #expect(text.stdout.hasPrefix("state: stopped\nrate: 360 mL/h\nvolume infused: "), "\(text.stdout)")
        #expect(text.stdout.hasSuffix("\nalarms: none\n"))
    }

    @Test("start: a diameter in mm and a rate the pump cannot set exactly: rounded toward less, and both rates printed")
    func startRounded() throws {
        let sim = try HostedNewEraPump()
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let start = try Self.pump("start", sim.path, ["--safe-mode", "0", "--diameter", "26.59", "--rate", "1.23456 mL/h"])
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stdout == "syringe diameter: 26.59 mm\nrate: 1.2342 mL/h (asked 1.23456 mL/h, rounded toward less)\nstarted: infusing\n")
        let rate = sim.state.rate.volumeRate
        #expect(rate <= .millilitresPerHour(1.23456))
        #expect(rate.formatted(in: .millilitresPerHour, fractionDigits: 9) == "1.2342 mL/h")
        #expect(sim.state.prompt == .infusing)
    }

    @Test("start in safe mode: the note says the pump will stop itself, and it does, about --safe-mode seconds after the exit (alarm T)")
    func startInSafeMode() throws {
        let sim = try HostedNewEraPump()
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let start = try Self.pump("start", sim.path, ["--safe-mode", "1", "--rate", "10 mL/h"])
        let exitedAt = ContinuousClock.now
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stderr.contains("safe mode is on: the pump stops itself about 1 s after this command exits"), "\(start.stderr)")
        #expect(sim.state.mode == .safe && sim.state.safeModeTimeoutSeconds == 1)
        #expect(waitUntil(.seconds(5)) { sim.state.prompt == .stopped })
        #expect(ContinuousClock.now - exitedAt < .seconds(2))
        #expect(sim.state.alarm == .safeModeTimeout)
        let status = try Self.pump("status", sim.path, ["--safe-mode", "1"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.hasPrefix("state: stopped\n"), "\(status.stdout)")
        #expect(status.stdout.hasSuffix("alarms: communication time-out (high priority)\n"), "\(status.stdout)")
    }

    @Test("status reports a stalled pump's occlusion as a high-priority alarm")
    func statusWithAlarm() throws {
        let sim = try HostedNewEraPump()
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        #expect(try Self.pump("start", sim.path, ["--safe-mode", "0", "--rate", "10 mL/h"]).status == 0)
        #expect(try sim.inject("stall").contains("alarm S"))
        let json = try CLI.json(Self.pump("status", sim.path, ["--safe-mode", "0", "--json"]))
        #expect(json["state"] as? String == "stopped")
        #expect(json["alarms"] as? [String] == ["occlusion"])
        #expect(json["alarmPriority"] as? String == "high")
    }

    @Test("start refused by the pump (a rate above the syringe's limit): exit 1, the pump's code and reason, the pump not started")
    func startRefused() throws {
        let sim = try HostedNewEraPump()
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let run = try Self.pump("start", sim.path, ["--safe-mode", "0", "--rate", "9000 mL/h"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("error: set the rate: the pump refused (?OOR)"), "\(run.stderr)")
        #expect(run.stderr.contains("syringe"), "\(run.stderr)")
        #expect(!run.stdout.contains("started"))
        #expect(sim.state.prompt == .stopped)
    }

    @Test("no pump answers (wrong address): exit 1, uncertain, with what to check")
    func noAnswer() throws {
        let sim = try HostedNewEraPump()
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let run = try Self.pump("identify", sim.path, ["--address", "3"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("error: identify: uncertain"), "\(run.stderr)")
        #expect(run.stderr.contains("address 3") && run.stderr.contains("check the cable, that the pump is on, and its baud rate and address"),
                "\(run.stderr)")
        #expect(run.stdout.isEmpty)
        let stop = try Self.pump("stop", sim.path, ["--address", "3"])
        #expect(stop.status == 1)
        #expect(stop.stderr.contains("error: stop: uncertain, may or may not have taken effect"), "\(stop.stderr)")
    }

    @Test("a wrong device path, a device that is not a terminal, a busy device: exit 1 with a clear error, nothing on stdout")
    func badDevice() throws {
        for subcommand in ["identify", "status", "start", "stop"] {
            let run = try Self.pump(subcommand, "/nonexistent/pump0")
            #expect(run.status == 1, "\(subcommand)")
            #expect(run.stderr.contains("error: /nonexistent/pump0 does not exist"), "\(subcommand): \(run.stderr)")
            #expect(run.stderr.contains("plugged in"), "\(run.stderr)")
            #expect(run.stdout.isEmpty)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-pump-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let regular = try Self.pump("identify", file.path)
        #expect(regular.status == 1)
        #expect(regular.stderr.contains("is not a serial port or pseudo-terminal"), "\(regular.stderr)")

        let sim = try HostedNewEraPump()

        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let holder = try SerialPort(path: sim.path, settings: SerialSettings(baudRate: .b19200))
        defer { holder.close() }
        let busy = try Self.pump("identify", sim.path)
        #expect(busy.status == 1)
        #expect(busy.stderr.contains("is busy"), "\(busy.stderr)")
    }

    @Test("usage errors exit 64 before touching the device: unknown syringe (listing the known ones), both --syringe and --diameter, bad rate, bad address, bad safe-mode")
    func usageErrors() throws {
        let unknown = try Self.pump("start", "/nonexistent/pump0", ["--syringe", "Acme 60 mL"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("no syringe called \"Acme 60 mL\""), "\(unknown.stderr)")
        #expect(unknown.stderr.contains("BD Plastipak 60 mL") && unknown.stderr.contains("Terumo 20 mL")
                && unknown.stderr.contains("--diameter"), "\(unknown.stderr)")
        let both = try Self.pump("start", "/nonexistent/pump0", ["--syringe", "Terumo 20 mL", "--diameter", "20"])
        #expect(both.status == 64 && both.stderr.contains("not both"), "\(both.stderr)")
        let rate = try Self.pump("start", "/nonexistent/pump0", ["--rate", "fast"])
        #expect(rate.status == 64 && rate.stderr.contains("--rate"), "\(rate.stderr)")
        let volume = try Self.pump("start", "/nonexistent/pump0", ["--volume", "5 mL/h"])
        #expect(volume.status == 64 && volume.stderr.contains("--volume"), "\(volume.stderr)")
        let address = try Self.pump("identify", "/nonexistent/pump0", ["--address", "100"])
        #expect(address.status == 64 && address.stderr.contains("--address must be 0 to 99"), "\(address.stderr)")
        let safe = try Self.pump("status", "/nonexistent/pump0", ["--safe-mode", "300"])
        #expect(safe.status == 64 && safe.stderr.contains("--safe-mode"), "\(safe.stderr)")
        let baud = try Self.pump("status", "/nonexistent/pump0", ["--baud", "12345"])
        #expect(baud.status == 64, "\(baud.stderr)")
    }
}
