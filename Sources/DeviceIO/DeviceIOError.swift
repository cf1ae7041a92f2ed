import Glibc
import InfusionCore

/// Every failure of the device I/O layer, each with an actionable message (`description`): what
/// happened, on which device node, and what to do next.
///
/// Values are plain data (`Sendable`, `Equatable`), so callers can switch on them: a driver treats
/// `.disconnected` as "peer gone, reconnect later", `.readTimedOut` as "no reply", and the rest as
/// configuration or system problems for a person to fix.
public enum DeviceIOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The device node does not exist or the device behind it is gone (`ENOENT`, `ENXIO`, `ENODEV`).
    case notFound(path: String)
    /// This user may not open the node (`EACCES`, `EPERM`).
    case permissionDenied(path: String)
    /// Another program holds the port exclusively (`EBUSY` from `TIOCEXCL`, or our `flock`).
    case busy(path: String)
    /// The path opened, but it is not a terminal (serial port or pseudo-terminal).
    case notATerminal(path: String)
    /// The requested baud rate is not in the supported table (300 to 115200 baud).
    case unsupportedBaudRate(Int)
    /// The kernel driver accepted `tcsetattr` but did not apply the requested settings.
    case settingsRejected(path: String, detail: String)
    /// Nothing arrived before the deadline.
    case readTimedOut(path: String, after: Duration)
    /// The kernel did not accept all bytes before the deadline; `written` of `total` bytes went out.
    case writeTimedOut(path: String, written: Int, total: Int)
    /// The other end hung up: the USB adapter was unplugged, the pseudo-terminal's other side closed,
    /// or the line dropped (`POLLHUP`, `EIO`, a read of 0 bytes).
    case disconnected(path: String)
    /// The port or link was closed by this program; it cannot be used any more.
    case closed(path: String)
    /// `start(handler:)` was called on a link that is already started.
    case alreadyStarted(path: String)
    /// A system call failed for a reason not covered above.
    case system(path: String, operation: String, errno: Int32)
    /// libudev could not be used (no udev context, no netlink monitor).
    case udevUnavailable(operation: String, errno: Int32)
    /// A libusb call failed; `code` is the `libusb_error` value and `name` its symbolic name.
    case usb(operation: String, code: Int32, name: String)
    /// USB hot-plug notification is not supported by this libusb build or platform.
    case usbHotplugUnsupported

    /// A short human-readable form, for logs and listings.
    public var description: String {
        switch self {
        case .notFound(let path):
            return "\(path) does not exist or the device behind it is gone: check that it is plugged in, "
                + "and run `infusionctl devices` to see the nodes this machine has"
        case .permissionDenied(let path):
            return "permission denied opening \(path): this user is not allowed to use the device; install the "
                + "udev rules and join the `infusion` group as described in udev/README.md, then log in again"
        case .busy(let path):
            return "\(path) is busy: another program holds it open exclusively (a terminal program, ModemManager, "
                + "or another infusionctl); close that program (`fuser -v \(path)` shows it) and retry"
        case .notATerminal(let path):
            return "\(path) is not a serial port or pseudo-terminal: check the device path"
        case .unsupportedBaudRate(let rate):
            let supported = BaudRate.allCases.map { String($0.rawValue) }.joined(separator: ", ")
            return "unsupported baud rate \(rate): use one of \(supported)"
        case .settingsRejected(let path, let detail):
            return "the driver of \(path) did not apply the serial settings (\(detail)): "
                + "this adapter may not support them; try another adapter or the device's default settings"
        case .readTimedOut(let path, let after):
            return "nothing received on \(path) within \(after.formattedForError): check the cable, "
                + "that the device is switched on, and its baud rate and parity"
        case .writeTimedOut(let path, let written, let total):
            return "could not send to \(path): only \(written) of \(total) bytes were accepted before the deadline; "
                + "the line may be blocked by flow control or the adapter is stuck: check the cable and re-plug the adapter"
        case .disconnected(let path):
            return "\(path) hung up: the device was unplugged or the other end closed; "
                + "check the cable and reconnect"
        case .closed(let path):
            return "\(path) was already closed by this program: open it again"
        case .alreadyStarted(let path):
            return "the link on \(path) is already started: a link has exactly one handler"
        case .system(let path, let operation, let code):
            return "\(operation) on \(path) failed: \(errnoText(code)) (errno \(code))"
        case .udevUnavailable(let operation, let code):
            return "udev is not usable (\(operation): \(errnoText(code))): device discovery needs /sys and, "
                + "for hot-plug events, a running systemd-udevd"
        case .usb(let operation, let code, let name):
            return "libusb \(operation) failed: \(name) (\(code)); see udev/README.md for USB permissions"
        case .usbHotplugUnsupported:
            return "this libusb build does not support hot-plug notification: list devices periodically instead"
        }
    }
}

/// The C library's text for an errno value.
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}

extension Duration {
    /// "250 ms" or "1.5 s": short, for error messages.
    var formattedForError: String {
        let ns = nanoseconds
        if ns < 1_000_000_000 {
            let ms = Double(ns) / 1e6
            return ms == ms.rounded() ? "\(Int64(ms)) ms" : "\(ms) ms"
        }
        let s = Double(ns) / 1e9
        return s == s.rounded() ? "\(Int64(s)) s" : "\(s) s"
    }
}
