import Glibc
import InfusionCore
import Testing

@testable import DeviceIO

@Suite("Pseudo-terminal pairs")
struct PseudoTerminalTests {
    @Test("a new pair exposes a slave path in raw mode, and the master sees no peer yet")
    func creation() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        #expect(pty.slavePath.hasPrefix("/dev/pts/"))
        #expect(exists(pty.slavePath))
        #expect(!pty.isSlaveOpen)
        // Raw mode is already on the slave before any driver configures it.
        let fd = open(pty.slavePath, O_RDWR | O_NOCTTY | O_NONBLOCK)
        #expect(fd >= 0)
        defer { close(fd) }
        var t = termios()
        #expect(tcgetattr(fd, &t) == 0)
        #expect(t.c_lflag & tcflag_t(ICANON | ECHO | ISIG) == 0)
        #expect(t.c_oflag & tcflag_t(OPOST) == 0)
        #expect(t.c_iflag & tcflag_t(ICRNL | IXON) == 0)
        #expect(pty.isSlaveOpen)
    }

    @Test("bytes written by the simulator are not echoed back and not translated")
    func noEchoNoTranslation() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { port.close() }
        let text = Array("RAT 10 MH\r\n\u{03}".utf8)
        try pty.write(text, timeout: .seconds(1))
        #expect(try port.read(exactly: text.count, timeout: .seconds(1)) == text)
        #expect(throws: DeviceIOError.self) { try pty.read(upTo: 64, timeout: .milliseconds(30)) }
    }

    @Test("closing the pair hangs up the slave side and removes its node")
    func closeHangsUp() throws {
        let pty = try PseudoTerminal()
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { port.close() }
        pty.close()
        pty.close()  // idempotent
        #expect(pty.isClosed)
        #expect(throws: DeviceIOError.disconnected(path: pty.slavePath)) { try port.read(upTo: 1, timeout: .seconds(1)) }
        port.close()
        #expect(port.isClosed)
    }

    @Test("the master reads 'peer gone' while no driver has the slave open, and works again after a re-open")
    func reopen() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        #expect(throws: DeviceIOError.self) { try pty.read(upTo: 8, timeout: .milliseconds(50)) }
        let first = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        #expect(pty.isSlaveOpen)
        try first.write([1], timeout: .seconds(1))
        #expect(try pty.read(upTo: 8, timeout: .seconds(1)) == [1])
        first.close()
        #expect(!pty.isSlaveOpen)
        let (gone, elapsed) = measure {
            Outcome { () throws(DeviceIOError) in try pty.read(upTo: 8, timeout: .seconds(5)) }
        }
        #expect(gone == .failure(.disconnected(path: "pty master of \(pty.slavePath)")))
        #expect(elapsed < .milliseconds(100))
        let second = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { second.close() }
        #expect(pty.isSlaveOpen)
        try second.write([2], timeout: .seconds(1))
        #expect(try pty.read(upTo: 8, timeout: .seconds(1)) == [2])
    }

    @Test("holdSlaveOpen keeps the master from ever seeing a hang-up")
    func holdSlaveOpen() throws {
        let pty = try PseudoTerminal(holdSlaveOpen: true)
        #expect(pty.isSlaveOpen)
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        port.close()
        #expect(pty.isSlaveOpen)
        #expect(throws: DeviceIOError.readTimedOut(path: "pty master of \(pty.slavePath)", after: .milliseconds(30))) {
            try pty.read(upTo: 8, timeout: .milliseconds(30))
        }
        pty.close()
        #expect(!pty.isSlaveOpen)
    }
}
