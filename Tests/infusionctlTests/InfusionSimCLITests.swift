import CommandLineTestSupport
import DeviceIO
import Foundation
import InfusionCore
import Testing

/// A terminal on a simulated New Era pump's pty, speaking basic mode by hand as a technician would:
/// commands end in CR, replies come as STX text ETX. Owns its serial port (held exclusively); one thread.
final class BasicModeTerminal {
    let port: SerialPort
    private var buffer: [UInt8] = []

    init(path: String) throws {
        port = try SerialPort(path: path, settings: SerialSettings(baudRate: .b19200))
    }

    func send(_ command: String) throws {
        try port.write(Array((command + "\r").utf8), timeout: .seconds(1))
    }

    /// The text of the next reply, or nil if none comes within `limit`.
    func reply(within limit: Duration = .seconds(2)) throws -> String? {
        let deadline = ContinuousClock.now + limit
        while true {
            if let stx = buffer.firstIndex(of: 0x02), let etx = buffer[stx...].firstIndex(of: 0x03) {
                let text = String(decoding: buffer[(stx + 1)..<etx], as: UTF8.self)
                buffer.removeSubrange(...etx)
                return text
            }
            guard ContinuousClock.now < deadline else { return nil }
            buffer += try readSome(timeout: .milliseconds(50))
        }
    }

    /// Sends `command` and returns the reply's text (nil: no reply within `limit`).
    func exchange(_ command: String, within limit: Duration = .seconds(2)) throws -> String? {
        try send(command)
        return try reply(within: limit)
    }

    /// Every byte that arrives within `limit`.
    func drain(for limit: Duration) throws -> [UInt8] {
        let deadline = ContinuousClock.now + limit
        var bytes = buffer
        buffer.removeAll()
        while ContinuousClock.now < deadline {
            bytes += try readSome(timeout: .milliseconds(20))
        }
        return bytes
    }

    /// Reads until the line hangs up; the error that ended it, or nil if it is still up after `limit`.
    func hangUp(within limit: Duration) -> DeviceIOError? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            do throws(DeviceIOError) {
                _ = try port.read(upTo: 256, timeout: .milliseconds(20))
            } catch {
                if case .readTimedOut = error { continue }
                return error
            }
        }
        return nil
    }

    /// What arrives within `timeout` (nothing if nothing does); other read errors are thrown.
    private func readSome(timeout: Duration) throws(DeviceIOError) -> [UInt8] {
        do {
            return try port.read(upTo: 256, timeout: timeout)
        } catch {
            if case .readTimedOut = error { return [] }
            throw error
        }
    }

    func close() { port.close() }
}

/// The `infusion-sim` executable as a child process: its device lines, `--pump newera:ADDRESS`, `--link`,
/// faults typed on its standard input (observed on the pty, byte for byte), and its usage errors.
@Suite("infusion-sim: the simulator host executable", .serialized)
struct InfusionSimCLITests {
    /// "pump0 newera /dev/pts/7" → "/dev/pts/7", or nil if the line is not exactly of that form.
    static func ptyPath(in line: String, device: String = "pump0", linkDirectory: String? = nil) -> String? {
        var rest = Substring(line)
        let prefix = "\(device) newera "
        guard rest.hasPrefix(prefix) else { return nil }
        rest = rest.dropFirst(prefix.count)
        if let linkDirectory {
            let suffix = " (link \(linkDirectory)/\(device))"
            guard rest.hasSuffix(suffix) else { return nil }
            rest = rest.dropLast(suffix.count)
        }
        guard rest.hasPrefix("/dev/pts/"), let number = rest.split(separator: "/").last,
              !number.isEmpty, number.allSatisfy(\.isASCII), number.allSatisfy(\.isNumber) else { return nil }
        return String(rest)
    }

    @Test("--pump newera:7 --pump newera: one exact line per device, and each pump answers only at its own address")
    func addresses() throws {
        let sim = try SimulatorProcess(["--pump", "newera:7", "--pump", "newera"])
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let line0 = try #require(sim.tool.line(containing: "pump0 "))
        let line1 = try #require(sim.tool.line(containing: "pump1 "))
        let path0 = try #require(Self.ptyPath(in: line0), "\"\(line0)\" is not \"pump0 newera /dev/pts/N\"")
        let path1 = try #require(Self.ptyPath(in: line1, device: "pump1"), "\"\(line1)\" is not \"pump1 newera /dev/pts/N\"")
        #expect(path0 != path1)
        #expect(sim.tool.stdout.count == 2, "nothing else on stdout: \(sim.tool.stdout)")

        let seven = try BasicModeTerminal(path: path0)
        #expect(try seven.exchange("0VER", within: .milliseconds(300)) == nil, "pump0 is at address 7: silent for 0")
        #expect(try seven.exchange("12VER", within: .milliseconds(300)) == nil)
        #expect(try seven.exchange("7VER") == "07A?R", "its power-up alarm, from address 07")
        #expect(try seven.exchange("7VER") == "07SNE1000V3.928")
        #expect(try seven.exchange("VER") == "07SNE1000V3.928", "unaddressed: point to point")
        seven.close()

        let zero = try BasicModeTerminal(path: path1)
        defer { zero.close() }
        #expect(try zero.exchange("7VER", within: .milliseconds(300)) == nil, "pump1 is at address 0")
        #expect(try zero.exchange("0VER") == "00A?R")
        #expect(try zero.exchange("0VER") == "00SNE1000V3.928")

        // And through the real driver: infusionctl finds the pump at 7, and nothing at 0.
        let found = try CLI.run(["pump", "identify", "--device", path0, "--protocol", "newera", "--address", "7"])
        #expect(found.status == 0 && found.stdout == "newera NE1000, firmware 3.928\n", "\(found.stderr)")
    }

    @Test("--link DIR: DIR/pump0 points at the printed pty; unplug hangs the line up and removes the link; replug prints the new pty and links it; the pump keeps its state")
    func linkUnplugReplug() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-link-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sim = try SimulatorProcess(["--pump", "newera", "--link", directory])
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let line = try #require(sim.tool.line(containing: "pump0 "))
        let path = try #require(Self.ptyPath(in: line, linkDirectory: directory), "\"\(line)\" is not \"pump0 newera /dev/pts/N (link \(directory)/pump0)\"")
        let link = directory + "/pump0"
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == path)

        let terminal = try BasicModeTerminal(path: link)
        #expect(try terminal.exchange("0") == "00A?R")
        #expect(try terminal.exchange("0RAT5MH") == "00S")

        #expect(sim.control("pump0 unplug", acknowledgedBy: "pump0 unplugged"))
        let error = terminal.hangUp(within: .seconds(2))
        if case .disconnected? = error {} else { Issue.record("the line must hang up on unplug, got \(String(describing: error))") }
        terminal.close()
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil, "unplugged: the link is gone, as udev removes it")
        #expect(throws: DeviceIOError.self) { _ = try SerialPort(path: link, settings: SerialSettings(baudRate: .b19200)) }
        #expect(sim.control("status", acknowledgedBy: "pump0 newera (unplugged)"))

        #expect(sim.control("pump0 replug", acknowledgedBy: "pump0 replugged"))
        let again = try #require(sim.tool.line(containing: "pump0 newera /dev/pts/", skipping: 1, within: .seconds(5)))
        let newPath = try #require(Self.ptyPath(in: again, linkDirectory: directory), "\(again)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == newPath)
        let back = try BasicModeTerminal(path: link)
        defer { back.close() }
        // Same pump, not power-cycled: no new A?R, and the rate set before the unplug is still there.
        #expect(try back.exchange("0RAT") == "00S5.000MH")
    }

    @Test("faults typed on stdin reach the pump: stall, program-error, phase-out-of-range, silence, garbage; unknown faults and devices are errors")
    func faults() throws {
        let sim = try SimulatorProcess(["--pump", "newera"])
        defer { withExtendedLifetime(sim) {} }  // serving until the end of the test
        let path = try #require(sim.tool.line(containing: "pump0 ").flatMap { Self.ptyPath(in: $0) })
        let terminal = try BasicModeTerminal(path: path)
        defer { terminal.close() }
        #expect(try terminal.exchange("0") == "00A?R")
        #expect(try terminal.exchange("0RAT100MH") == "00S")

        for (fault, letter, acknowledgement) in [("stall", "S", "pump0: motor stalled while pumping: stopped, alarm S"),
                                                 ("program-error", "E", "pump0: program error while pumping: stopped, alarm E"),
                                                 ("phase-out-of-range", "O", "pump0: phase out of range while pumping: stopped, alarm O")] {
            #expect(try terminal.exchange("0RUN") == "00I")
            #expect(sim.control("pump0 \(fault)", acknowledgedBy: acknowledgement), "\(sim.tool.stdout)")
            #expect(try terminal.exchange("0") == "00A?\(letter)", "\(fault)")
            #expect(try terminal.exchange("0") == "00S", "acknowledged")
        }
        // Armed while stopped: the next RUN starts, then stops 100 ms later.
        #expect(sim.control("pump0 program-error", acknowledgedBy: "pump0: program-error set: the next RUN"))
        #expect(try terminal.exchange("0RUN") == "00I")
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try terminal.exchange("0") == "00A?E")

        #expect(sim.control("pump0 silence 1s", acknowledgedBy: "pump0: silent for"))
        let silencedAt = ContinuousClock.now
        #expect(try terminal.exchange("0VER", within: .milliseconds(500)) == nil, "silenced")
        let remaining = silencedAt + .milliseconds(1100) - ContinuousClock.now
        if remaining > .zero { Thread.sleep(forTimeInterval: Double(remaining.components.attoseconds) / 1e18 + Double(remaining.components.seconds)) }
        #expect(try terminal.exchange("0VER") == "00SNE1000V3.928", "talks again after 1 s")

        #expect(sim.control("pump0 garbage 24", acknowledgedBy: "pump0: sending 24 random bytes"))
        #expect(try terminal.drain(for: .milliseconds(500)).count == 24)

        #expect(sim.control("pump0 explode", acknowledgedBy: "error: pump0: unknown New Era fault \"explode\""))
        let known = try #require(sim.tool.stdout.last { $0.contains("unknown New Era fault") })
        for name in ["stall", "program-error", "phase-out-of-range", "corrupt", "silence", "garbage", "power-reset"] {
            #expect(known.contains(name), "\(known)")
        }
        #expect(sim.control("pump7 stall", acknowledgedBy: "error: no device \"pump7\": devices are pump0"))
        #expect(sim.control("pump0 silence soon", acknowledgedBy: "error: pump0: silence: cannot read \"soon\""))
        // Help lists the pump's faults, including the injectable program alarms.
        #expect(sim.control("help", acknowledgedBy: "program-error"))
    }

    @Test("bad arguments are usage errors (exit 64) naming what is accepted", arguments: [
        (["--pump", "newera:100"], "the parameter is the pump's address, 0 to 99"),
        (["--pump", "newera:seven"], "the parameter is the pump's address, 0 to 99"),
        (["--pump", "acme"], "unknown pump kind \"acme\": choose one of newera"),
        ([], "no devices"),
        (["--pump", "newera", "--speed", "0"], "--speed must be a positive number"),
    ])
    func usageErrors(arguments: [String], message: String) throws {
        let run = try LiveTool("infusion-sim", arguments)
        let status = run.waitForExit(within: .seconds(20))
        #expect(status == 64, "\(run.stderr.joined(separator: "\n"))")
        #expect(run.stderr.joined(separator: "\n").contains(message), "\(run.stderr.joined(separator: "\n"))")
        #expect(run.stdout.isEmpty, "no device line: \(run.stdout)")
    }

    @Test("--list shows the newera kind with its ADDRESS parameter and every fault, including the program alarms and corrupt")
    func list() throws {
        let run = try BuiltTool("infusion-sim").run(["--list"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("  newera[:ADDRESS 0-99 (default 0)]  New Era"), "\(run.stdout)")
        for fault in ["stall", "program-error", "phase-out-of-range", "corrupt [N]", "silence [DUR]", "power-reset"] {
            #expect(run.stdout.contains("      \(fault)"), "\(fault) missing")
        }
    }
}
