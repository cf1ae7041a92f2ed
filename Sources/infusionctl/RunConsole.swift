#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Session
import Synchronization

/// Where `run` shows a session: JSON lines (`--json-events`), a status block redrawn in place (stdout is
/// a terminal), or plain lines (a pipe or a file). Every write goes through `Output`, under one lock, so
/// event lines from the records thread and redraws from the main loop never interleave.
final class RunConsole: @unchecked Sendable {
    // @unchecked: mutable state (`blockLines`, `lastBlock`) is only touched under `lock`.
    enum Mode: Sendable {
        case json, terminal, plain
    }

    let mode: Mode
    let renderer: StatusRenderer
    private let lock = NSLock()
    private var blockLines = 0
    private var lastBlock: [String] = []

    init(json: Bool, renderer: StatusRenderer) {
        if json {
            mode = .json
        } else {
            mode = isatty(STDOUT_FILENO) == 1 ? .terminal : .plain
        }
        self.renderer = renderer
    }

    /// Shows one session event (called in order by the session, after each record is committed).
    func show(_ event: SessionEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch mode {
        case .json:
            Output.line(event.jsonLine)
        case .plain:
            if let line = renderer.eventLine(event) { Output.line(line) }
        case .terminal:
            guard let line = renderer.eventLine(event) else { return }
            Output.write(StatusRenderer.rewind(previousLines: blockLines) + line + "\n" + lastBlock.map { $0 + "\n" }.joined())
        }
    }

    /// Redraws the status block in place (terminal mode only).
    func redraw(_ lines: [String]) {
        guard mode == .terminal else { return }
        lock.lock()
        defer { lock.unlock() }
        Output.write(StatusRenderer.rewind(previousLines: blockLines) + lines.map { $0 + "\n" }.joined())
        blockLines = lines.count
        lastBlock = lines
    }

    /// A plain status line (plain mode only).
    func statusLine(_ line: String) {
        guard mode == .plain else { return }
        lock.lock()
        defer { lock.unlock() }
        Output.line(line)
    }

    /// A message for people: stdout in the text modes, stderr (as a note) with `--json-events`.
    func message(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        if mode == .json { Output.note(text) } else { Output.line(text) }
    }

    /// The terminal's width (80 when unknown).
    static var terminalWidth: Int {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}

/// Single-key input on a terminal: canonical mode and echo off on stdin (signals stay on, so Ctrl-C
/// still reaches the SIGINT handler), restored by `restore()` (idempotent; also on SIGINT/SIGTERM, since
/// those end the session through the normal path). Owns nothing but the saved settings of fd 0.
final class RawTerminal: @unchecked Sendable {
    // @unchecked: `saved` is written once in init and read in restore under `restored`.
    private var saved = termios()
    private let restored = Atomic<Bool>(false)

    /// Switches stdin to single-key input; nil when stdin is not a terminal or refuses.
    init?() {
        guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &saved) == 0 else { return nil }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        guard tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0 else { return nil }
    }

    /// Puts the terminal back as it was.
    func restore() {
        guard !restored.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = tcsetattr(STDIN_FILENO, TCSANOW, &saved)
    }

    deinit { restore() }
}

/// Operator input read on its own thread: single keys (terminal) or lines (`--json-events`, or stdin not a
/// terminal), queued for the main loop. End of input just stops reading: the session keeps running.
final class OperatorInputQueue: Sendable {
    /// One thing the operator typed.
    enum Input: Sendable {
        case key(UInt8)
        case line(String)
    }

    private let queue = Mutex<[Input]>([])

    /// Starts the reader thread: keys when `keys` is true, else lines.
    func start(keys: Bool) {
        let thread = Thread { [self] in
            if keys {
                var byte: UInt8 = 0
                while true {
                    let count = read(STDIN_FILENO, &byte, 1)
                    if count == 1 {
                        queue.withLock { $0.append(.key(byte)) }
                    } else if count == 0 || (count < 0 && errno != EINTR) {
                        return
                    }
                }
            } else {
                while let line = readLine(strippingNewline: true) {
                    queue.withLock { $0.append(.line(line)) }
                }
            }
        }
        thread.name = "operator-input"
        thread.start()
    }

    /// Everything typed since the last call, oldest first.
    func take() -> [Input] {
        queue.withLock { items in
            defer { items.removeAll() }
            return items
        }
    }
}
