import Glibc
import InfusionCore
import Testing

@testable import DeviceIO

/// SerialPort over real pseudo-terminals: the driver's side opens the slave exactly as it would
/// open a USB-serial adapter.
@Suite("Serial port over real ptys")
struct SerialPortTests {
    static let settingsUnderTest: [SerialSettings] = [
        .newEra19200, .alaris38400, .fresenius19200, .noninAvant9600, .contecLegacy19200, .contec115200,
        SerialSettings(baudRate: .b300),
        SerialSettings(baudRate: .b57600, flowControl: .rtsCts),
    ]

    @Test("bytes go both ways, all 256 values, at several settings", arguments: settingsUnderTest)
    func bytesBothWays(settings: SerialSettings) throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: settings)
        defer { port.close() }
        #expect(port.settings == settings)

        let all = (0...255).map { UInt8($0) }
        try pty.write(all, timeout: .seconds(1))
        #expect(try port.read(exactly: all.count, timeout: .seconds(2)) == all)

        let reply = all.reversed() + [0x0D, 0x0A, 0x11, 0x13]  // CR LF XON XOFF pass untouched
        try port.write(Array(reply), timeout: .seconds(1))
        var received: [UInt8] = []
        while received.count < reply.count {
            received += try pty.read(upTo: 4096, timeout: .seconds(2))
        }
        #expect(received == Array(reply))
    }

    @Test("the settings reach the driver's termios: speed, stop bits, raw, no flow control")
    func termiosApplied() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: .noninAvant9600)
        defer { port.close() }
        #expect(SerialPort.isPseudoTerminalSlave(port.descriptor.fd))
        var t = termios()
        try port.descriptor.withDescriptor { fd, _ throws(DeviceIOError) in
            #expect(tcgetattr(fd, &t) == 0)
        }
        #expect(cfgetospeed(&t) == speed_t(B9600))
        #expect(cfgetispeed(&t) == speed_t(B9600))
        #expect(t.c_cflag & tcflag_t(CSTOPB) != 0)
        #expect(t.c_cflag & tcflag_t(CRTSCTS) == 0)
        #expect(t.c_cflag & tcflag_t(CLOCAL | CREAD) == tcflag_t(CLOCAL | CREAD))
        #expect(t.c_iflag & tcflag_t(IXON | IXOFF | IXANY | ICRNL | ISTRIP) == 0)
        #expect(t.c_lflag & tcflag_t(ICANON | ECHO | ISIG | IEXTEN) == 0)
        #expect(t.c_oflag & tcflag_t(OPOST) == 0)
    }

    @Test("character size, parity and stop bits are encoded into termios as asked (a pty keeps only 8N)",
          arguments: SerialPortTests.settingsUnderTest)
    func termiosEncoding(settings: SerialSettings) {
        var t = termios()
        t.c_cflag = tcflag_t(CS5 | PARENB | PARODD | CSTOPB) | tcflag_t(CRTSCTS)
        t.c_iflag = tcflag_t(IXON | IXOFF | IXANY)
        settings.apply(to: &t)
        #expect(settings.mismatch(in: t) == nil)
        #expect(t.c_cflag & tcflag_t(CSIZE) == (settings.dataBits == .seven ? tcflag_t(CS7) : tcflag_t(CS8)))
        #expect((t.c_cflag & tcflag_t(PARENB) != 0) == (settings.parity != .none))
        #expect((t.c_cflag & tcflag_t(PARODD) != 0) == (settings.parity == .odd))
        #expect((t.c_cflag & tcflag_t(CSTOPB) != 0) == (settings.stopBits == .two))
        #expect((t.c_cflag & tcflag_t(CRTSCTS) != 0) == (settings.flowControl == .rtsCts))
        #expect(t.c_iflag & tcflag_t(IXON | IXOFF | IXANY) == 0)
        #expect(cfgetospeed(&t) == settings.baudRate.speed)
        let vmin = withUnsafeBytes(of: t.c_cc) { $0[Int(VMIN)] }
        let vtime = withUnsafeBytes(of: t.c_cc) { $0[Int(VTIME)] }
        #expect(vmin == 1 && vtime == 0)
        // A driver that dropped parity is caught on read-back.
        var dropped = t
        dropped.c_cflag &= ~tcflag_t(PARENB | PARODD)
        #expect((settings.mismatch(in: dropped) != nil) == (settings.parity != .none))
    }

    @Test("a read with nothing to read waits until its deadline, not less and not much more")
    func readDeadlineHonoured() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { port.close() }
        for timeout in [Duration.milliseconds(20), .milliseconds(150)] {
            let (outcome, elapsed) = measure { Outcome { () throws(DeviceIOError) in try port.read(upTo: 16, timeout: timeout) } }
            #expect(outcome == .failure(.readTimedOut(path: pty.slavePath, after: timeout)))
            #expect(elapsed >= timeout)
            #expect(elapsed < timeout + .milliseconds(150), "woke \(elapsed) after a \(timeout) deadline")
        }
    }

    @Test("a read for several bytes keeps one deadline across partial arrivals")
    func exactReadDeadline() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { port.close() }
        try pty.write([1, 2, 3], timeout: .seconds(1))
        let (outcome, elapsed) = measure {
            Outcome { () throws(DeviceIOError) in try port.read(exactly: 10, timeout: .milliseconds(100)) }
        }
        guard case .failure(.readTimedOut) = outcome else {
            Issue.record("expected a read time-out, got \(outcome)")
            return
        }
        #expect(elapsed >= .milliseconds(100))
        #expect(elapsed < .milliseconds(250))
    }

    @Test("the other end closing is a disconnection within 100 ms, even in the middle of a read")
    func hangUpDuringRead() throws {
        let pty = try PseudoTerminal()
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { port.close() }
        let reader = Background { () -> (Outcome<[UInt8]>, MonotonicInstant) in
            let outcome = Outcome { () throws(DeviceIOError) in try port.read(upTo: 16, timeout: .seconds(10)) }
            return (outcome, SystemMonotonicClock().now())
        }
        pause(.milliseconds(30))  // let the reader block in poll
        let closedAt = SystemMonotonicClock().now()
        pty.close()
        let result = reader.value(timeout: .seconds(2))
        #expect(result?.0 == .failure(.disconnected(path: pty.slavePath)))
        if let (_, at) = result {
            #expect(at - closedAt < .milliseconds(100), "hang-up seen after \(at - closedAt)")
        }
        // Later calls fail the same way at once, never hang.
        let (again, elapsed) = measure { Outcome { () throws(DeviceIOError) in try port.read(upTo: 1, timeout: .seconds(5)) } }
        #expect(again == .failure(.disconnected(path: pty.slavePath)))
        #expect(elapsed < .milliseconds(100))
        #expect(Outcome { () throws(DeviceIOError) -> Bool in
            try port.write([1, 2, 3], timeout: .seconds(5))
            return true
        } == .failure(.disconnected(path: pty.slavePath)))
    }

    @Test("the other end closing in the middle of a blocked write is a disconnection, not a time-out")
    func hangUpDuringWrite() throws {
        let pty = try PseudoTerminal()
        let port = try SerialPort(path: pty.slavePath, settings: .contec115200)
        defer { port.close() }
        let big = [UInt8](repeating: 0x55, count: 4 << 20)  // far more than the pty buffers hold
        let writer = Background { () -> Outcome<Bool> in
            Outcome { () throws(DeviceIOError) -> Bool in
                try port.write(big, timeout: .seconds(10))
                return true
            }
        }
        pause(.milliseconds(50))  // the writer is now blocked waiting for room
        pty.close()
        let outcome = writer.value(timeout: .seconds(2))
        #expect(outcome == .failure(.disconnected(path: pty.slavePath)))
    }

    @Test("the driver closing in the middle of the simulator's blocked write is a disconnection on the master")
    func driverLeavesDuringSimulatorWrite() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        let big = [UInt8](repeating: 0xAA, count: 4 << 20)
        let writer = Background { () -> Outcome<Bool> in
            Outcome { () throws(DeviceIOError) -> Bool in
                try pty.write(big, timeout: .seconds(10))
                return true
            }
        }
        pause(.milliseconds(50))
        port.close()
        let outcome = writer.value(timeout: .seconds(2))
        guard case .failure(.disconnected) = outcome else {
            Issue.record("expected a disconnection, got \(String(describing: outcome))")
            return
        }
    }

    @Test("a write that cannot complete times out and says how much went out")
    func writeTimeout() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: .contec115200)
        defer { port.close() }
        let big = [UInt8](repeating: 0x55, count: 4 << 20)
        let (outcome, elapsed) = measure {
            Outcome { () throws(DeviceIOError) -> Bool in
                try port.write(big, timeout: .milliseconds(100))
                return true
            }
        }
        guard case .failure(.writeTimedOut(let path, let written, let total)) = outcome else {
            Issue.record("expected a write time-out, got \(outcome)")
            return
        }
        #expect(path == pty.slavePath)
        #expect(written > 0 && written < total)
        #expect(total == big.count)
        #expect(elapsed >= .milliseconds(100))
        #expect(elapsed < .milliseconds(400))
    }

    @Test("a second exclusive open of the same port is a clear busy error naming the path")
    func busy() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let first = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        let second = Outcome { () throws(DeviceIOError) -> String in
            try SerialPort(path: pty.slavePath, settings: .newEra19200).path
        }
        #expect(second == .failure(.busy(path: pty.slavePath)))
        if case .failure(let error) = second {
            #expect(error.description.contains(pty.slavePath))
            #expect(error.description.contains("busy"))
        }
        first.close()
        // Once released, it opens again.
        let third = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        third.close()
    }

    @Test("close() wakes a read blocked on another thread at once")
    func closeWakesReader() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        let reader = Background { Outcome { () throws(DeviceIOError) in try port.read(upTo: 16, timeout: .seconds(10)) } }
        pause(.milliseconds(30))
        let (outcome, elapsed) = measure { () -> Outcome<[UInt8]>? in
            port.close()
            return reader.value(timeout: .seconds(2))
        }
        #expect(outcome == .failure(.closed(path: pty.slavePath)))
        #expect(elapsed < .milliseconds(100))
        port.close()  // idempotent
        #expect(port.isClosed)
    }

    @Test("stale input from before the open is discarded")
    func staleInputDiscarded() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        try pty.write(Array("old".utf8), timeout: .seconds(1))
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { port.close() }
        try pty.write(Array("new".utf8), timeout: .seconds(1))
        #expect(try port.read(exactly: 3, timeout: .seconds(1)) == Array("new".utf8))
    }

    @Test("open errors are specific and actionable")
    func openErrors() {
        let missing = "/dev/infusion-test-does-not-exist"
        #expect(Outcome { () throws(DeviceIOError) in try SerialPort(path: missing, settings: .newEra19200).path }
            == .failure(.notFound(path: missing)))
        #expect(Outcome { () throws(DeviceIOError) in try SerialPort(path: "/dev/null", settings: .newEra19200).path }
            == .failure(.notATerminal(path: "/dev/null")))
        #expect(SerialPort.openError(errno: EACCES, path: "/dev/ttyUSB0") == .permissionDenied(path: "/dev/ttyUSB0"))
        #expect(SerialPort.openError(errno: EPERM, path: "/dev/ttyUSB0") == .permissionDenied(path: "/dev/ttyUSB0"))
        #expect(SerialPort.openError(errno: EBUSY, path: "/dev/ttyUSB0") == .busy(path: "/dev/ttyUSB0"))
        #expect(SerialPort.openError(errno: ENXIO, path: "/dev/ttyS3") == .notFound(path: "/dev/ttyS3"))
        #expect(DeviceIOError.permissionDenied(path: "/dev/ttyUSB0").description.contains("udev/README.md"))
        #expect(DeviceIOError.busy(path: "/dev/ttyUSB0").description.contains("/dev/ttyUSB0"))
    }

    @Test("baud rates come from an explicit table; anything else is a clear error")
    func baudRateTable() throws {
        #expect(BaudRate.allCases.map(\.bitsPerSecond) == [300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200])
        for rate in BaudRate.allCases { #expect(try BaudRate(bitsPerSecond: rate.rawValue) == rate) }
        for bad in [0, 110, 14400, 28800, 230400, 921600, -9600] {
            #expect(throws: DeviceIOError.unsupportedBaudRate(bad)) { try BaudRate(bitsPerSecond: bad) }
        }
        #expect(DeviceIOError.unsupportedBaudRate(14400).description.contains("115200"))
    }

    @Test("settings presets match the reference serial parameters")
    func presets() {
        #expect(SerialSettings.newEra19200.description == "19200 8N1")
        #expect(SerialSettings.alaris38400.description == "38400 8N1")
        #expect(SerialSettings.fresenius19200.description == "19200 7E1")
        #expect(SerialSettings.nonin9600.description == "9600 8N1")
        #expect(SerialSettings.noninAvant9600.description == "9600 8N2")
        #expect(SerialSettings.masimo9600.description == "9600 8N1")
        #expect(SerialSettings.contec115200.description == "115200 8N1")
        #expect(SerialSettings.contecLegacy19200.description == "19200 8O1")
        #expect(SerialSettings.mtSics9600.description == "9600 8N1")
        #expect(SerialSettings(baudRate: .b9600, flowControl: .xonXoff).description == "9600 8N1 xon/xoff")
    }
}
