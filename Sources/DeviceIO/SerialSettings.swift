import Glibc

/// The baud rates a `SerialPort` accepts: an explicit table from 300 to 115200 baud. Any other rate
/// is an `unsupportedBaudRate` error, never passed to the kernel as a raw number.
public enum BaudRate: Int, CaseIterable, Sendable, Codable, Comparable, CustomStringConvertible {
    case b300 = 300
    case b600 = 600
    case b1200 = 1200
    case b1800 = 1800
    case b2400 = 2400
    case b4800 = 4800
    case b9600 = 9600
    case b19200 = 19200
    case b38400 = 38400
    case b57600 = 57600
    case b115200 = 115200

    /// The rate for `bitsPerSecond`, or `.unsupportedBaudRate` naming the supported ones.
    public init(bitsPerSecond: Int) throws(DeviceIOError) {
        guard let rate = BaudRate(rawValue: bitsPerSecond) else { throw .unsupportedBaudRate(bitsPerSecond) }
        self = rate
    }

    /// Bits per second.
    public var bitsPerSecond: Int { rawValue }

    /// The termios speed constant (`B9600` …).
    var speed: speed_t {
        switch self {
        case .b300: speed_t(B300)
        case .b600: speed_t(B600)
        case .b1200: speed_t(B1200)
        case .b1800: speed_t(B1800)
        case .b2400: speed_t(B2400)
        case .b4800: speed_t(B4800)
        case .b9600: speed_t(B9600)
        case .b19200: speed_t(B19200)
        case .b38400: speed_t(B38400)
        case .b57600: speed_t(B57600)
        case .b115200: speed_t(B115200)
        }
    }

    /// Slower rates sort first.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    /// A short human-readable form, for logs and listings.
    public var description: String { "\(rawValue)" }
}

/// Bits per character.
public enum DataBits: Int, CaseIterable, Sendable, Codable {
    /// 7 data bits (Fresenius 7E1).
    case seven = 7
    /// 8 data bits (almost everything else).
    case eight = 8
}

/// Parity bit.
public enum Parity: String, CaseIterable, Sendable, Codable {
    /// No parity bit.
    case none
    /// Even parity.
    case even
    /// Odd parity (legacy Contec 8O1).
    case odd

    var letter: String {
        switch self {
        case .none: "N"
        case .even: "E"
        case .odd: "O"
        }
    }
}

/// Stop bits.
public enum StopBits: Int, CaseIterable, Sendable, Codable {
    /// One stop bit.
    case one = 1
    /// Two stop bits (Nonin Avant 9600: 8N2).
    case two = 2
}

/// Flow control. Binary protocols need `.none`: XON/XOFF would swallow the bytes 0x11 and 0x13.
public enum FlowControl: String, CaseIterable, Sendable, Codable {
    /// No flow control (the default).
    case none
    /// Hardware flow control (RTS/CTS).
    case rtsCts
    /// Software flow control (XON/XOFF). Only for text protocols that ask for it.
    case xonXoff
}

/// Everything a serial line needs besides its path: rate, framing and flow control. A plain value;
/// `SerialPort` applies it in raw mode (no echo, no line editing, no character translation).
public struct SerialSettings: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Line speed.
    public var baudRate: BaudRate
    /// Bits per character.
    public var dataBits: DataBits
    /// Parity bit.
    public var parity: Parity
    /// Stop bits.
    public var stopBits: StopBits
    /// Flow control; `.none` unless the device asks for it.
    public var flowControl: FlowControl

    /// Settings with the given framing; 8N1 without flow control unless told otherwise.
    public init(
        baudRate: BaudRate, dataBits: DataBits = .eight, parity: Parity = .none, stopBits: StopBits = .one,
        flowControl: FlowControl = .none
    ) {
        self.baudRate = baudRate
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.flowControl = flowControl
    }

    /// "19200 8N1", "19200 7E1 rts/cts".
    public var description: String {
        var text = "\(baudRate.rawValue) \(dataBits.rawValue)\(parity.letter)\(stopBits.rawValue)"
        switch flowControl {
        case .none: break
        case .rtsCts: text += " rts/cts"
        case .xonXoff: text += " xon/xoff"
        }
        return text
    }

    /// New Era syringe pumps, factory setting: 19200 8N1.
    public static let newEra19200 = SerialSettings(baudRate: .b19200)
    /// Alaris Asena syringe pumps: 38400 8N1.
    public static let alaris38400 = SerialSettings(baudRate: .b38400)
    /// Fresenius Kabi Base A / Agilia / Injectomat: 19200 7E1.
    public static let fresenius19200 = SerialSettings(baudRate: .b19200, dataBits: .seven, parity: .even)
    /// Nonin DF2/DF7/DF8 serial formats: 9600 8N1.
    public static let nonin9600 = SerialSettings(baudRate: .b9600)
    /// Nonin Avant 9600 bedside monitor, ASCII: 9600 8N2.
    public static let noninAvant9600 = SerialSettings(baudRate: .b9600, stopBits: .two)
    /// Masimo Radical-5/7, Rad-8 "ASCII 1": 9600 8N1.
    public static let masimo9600 = SerialSettings(baudRate: .b9600)
    /// Contec CMS50D+/E/F/60C "V7.0" protocol through its CP2102 cable: 115200 8N1.
    public static let contec115200 = SerialSettings(baudRate: .b115200)
    /// Contec legacy firmware (4.5 and older): 19200 8O1.
    public static let contecLegacy19200 = SerialSettings(baudRate: .b19200, parity: .odd)
    /// Mettler Toledo MT-SICS balance: 9600 8N1, no handshake.
    public static let mtSics9600 = SerialSettings(baudRate: .b9600)

    /// Applies these settings to `t` in raw mode: `cfmakeraw`, speed, character size, parity, stop
    /// bits, `CLOCAL | CREAD`, flow control, and VMIN=1/VTIME=0 (so a non-blocking read with no data
    /// is `EAGAIN`, and a read of 0 bytes can only mean a hang-up).
    func apply(to t: inout termios) {
        cfmakeraw(&t)
        cfsetispeed(&t, baudRate.speed)
        cfsetospeed(&t, baudRate.speed)
        t.c_cflag &= ~tcflag_t(CSIZE | PARENB | PARODD | CSTOPB)
        t.c_cflag &= ~tcflag_t(CRTSCTS)
        t.c_cflag |= tcflag_t(CLOCAL | CREAD)
        t.c_cflag |= dataBits == .seven ? tcflag_t(CS7) : tcflag_t(CS8)
        switch parity {
        case .none: break
        case .even: t.c_cflag |= tcflag_t(PARENB)
        case .odd: t.c_cflag |= tcflag_t(PARENB | PARODD)
        }
        if stopBits == .two { t.c_cflag |= tcflag_t(CSTOPB) }
        t.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY)
        switch flowControl {
        case .none: break
        case .rtsCts: t.c_cflag |= tcflag_t(CRTSCTS)
        case .xonXoff: t.c_iflag |= tcflag_t(IXON | IXOFF)
        }
        withUnsafeMutableBytes(of: &t.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
    }

    /// What of these settings `t` (read back from the driver) does not carry, or nil when all of it.
    func mismatch(in t: termios) -> String? {
        var problems: [String] = []
        var readBack = t
        if cfgetospeed(&readBack) != baudRate.speed { problems.append("speed \(baudRate.rawValue)") }
        let size = t.c_cflag & tcflag_t(CSIZE)
        if size != (dataBits == .seven ? tcflag_t(CS7) : tcflag_t(CS8)) { problems.append("\(dataBits.rawValue) data bits") }
        let parityBits = t.c_cflag & tcflag_t(PARENB | PARODD)
        let wantedParity: tcflag_t =
            switch parity {
            case .none: 0
            case .even: tcflag_t(PARENB)
            case .odd: tcflag_t(PARENB | PARODD)
            }
        if parityBits != wantedParity { problems.append("parity \(parity.rawValue)") }
        if (t.c_cflag & tcflag_t(CSTOPB) != 0) != (stopBits == .two) { problems.append("\(stopBits.rawValue) stop bits") }
        return problems.isEmpty ? nil : "not applied: " + problems.joined(separator: ", ")
    }
}
