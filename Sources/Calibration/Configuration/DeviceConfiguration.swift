import DeviceIO
import DeviceProtocols
import Drivers
import InfusionCore
import Logging
import Synchronization

/// A device setting could not be written or confirmed. The message says what happened and what to do next.
public struct DeviceConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What happened and what to do next.
    public var description: String

    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

/// Where a New Era pump is reached: its port, the baud rate it runs at, and its network address.
public struct NewEraLink: Hashable, Sendable, CustomStringConvertible {
    /// The serial port (`/dev/infusion/pump0`, a pty).
    public var path: String
    /// The pump's current baud rate.
    public var baudRate: NewEra.BaudRate
    /// The pump's current address.
    public var address: NewEra.Address

    /// A link description.
    public init(path: String, baudRate: NewEra.BaudRate = .b19200, address: NewEra.Address = .zero) {
        self.path = path
        self.baudRate = baudRate
        self.address = address
    }

    /// "address 0 at 19200 baud on /dev/pts/3".
    public var description: String { "address \(address) at \(baudRate) on \(path)" }
}

/// Writes a New Era pump's communication settings through the New Era driver and confirms each by
/// reading it back (protocols.md §A1; `*ADR<n>[B<baud>]` from the NE-9000 manual §12.4.5, same command set):
///
/// - address: `*ADR<n>` (a system command every pump accepts whatever its address), confirmed by the
///   reply from the new address, then by a fresh connection to the new address answering `VER`;
/// - baud rate: `*ADR<n>B<baud>`; the pump answers at the new rate, so the confirmation is a fresh
///   connection at the new rate answering `VER`;
/// - safe mode: `SAF<n>` (the driver's connection handshake), read back with `SAF`.
///
/// Address and baud-rate changes connect in basic mode (`SAF0` at the handshake, as the driver always
/// sends one) so that the pump does not raise a safe-mode time-out alarm after this short session; the
/// controller re-arms safe mode at every connection. Use with the pump stopped. Any task; each call opens
/// and closes its own driver (which owns the port meanwhile).
public struct NewEraConfigurator: Sendable {
    /// The clock the drivers use.
    public let clock: any MonotonicClock
    /// Per-reply time-out of the driver's session (400 ms by default; raise it for 300 baud).
    public let replyTimeout: Duration
    private let logger = Logger(label: "infusion.calibration.configure.newera")

    /// A configurator using `clock`.
    public init(clock: any MonotonicClock = SystemMonotonicClock(), replyTimeout: Duration = .milliseconds(400)) {
        self.clock = clock
        self.replyTimeout = replyTimeout
    }

    /// Sets the address of the pump at `link` to `address`; returns the pump's identity read at the new address.
    public func setAddress(_ address: NewEra.Address, at link: NewEraLink) async throws(DeviceConfigurationError) -> PumpIdentity {
        let pump = open(link, safeMode: 0)
        defer { pump.close() }
        let identity = try await identify(pump, link)
        switch await pump.setNetworkAddress(address) {
        case .confirmed: break
        case let .refused(refusal):
            throw DeviceConfigurationError("the pump (\(identity.model)) refused *ADR\(address) (\(refusal.code)): \(refusal.description)")
        case let .uncertain(reason):
            throw DeviceConfigurationError("no confirmation of *ADR\(address) from the pump at \(link): \(reason); "
                + "find its address on its panel or try both addresses with --address")
        }
        pump.close()
        logger.notice("New Era address set", metadata: ["from": "\(link.address)", "to": "\(address)"])
        var changed = link
        changed.address = address
        return try await confirm(changed, what: "address \(address)")
    }

    /// Sets the baud rate of the pump at `link` to `baudRate` (keeping its address); returns the pump's
    /// identity read at the new rate.
    public func setBaudRate(_ baudRate: NewEra.BaudRate, at link: NewEraLink) async throws(DeviceConfigurationError) -> PumpIdentity {
        let pump = open(link, safeMode: 0)
        defer { pump.close() }
        let identity = try await identify(pump, link)
        switch await pump.setNetworkAddress(link.address, baudRate: baudRate) {
        case .confirmed, .uncertain:
            // At a real line's old rate the reply (sent at the new rate) is unreadable: the fresh connection decides.
            break
        case let .refused(refusal):
            throw DeviceConfigurationError("the pump (\(identity.model)) refused *ADR\(link.address)B\(baudRate.rawValue) (\(refusal.code)): "
                + "\(refusal.description); this model may not set its baud rate over RS-232: set it on its panel")
        }
        pump.close()
        logger.notice("New Era baud rate set", metadata: ["from": "\(link.baudRate)", "to": "\(baudRate)"])
        var changed = link
        changed.baudRate = baudRate
        return try await confirm(changed, what: "\(baudRate)")
    }

    /// Sets the pump's stored safe-mode time-out to `seconds` (0 = basic mode) and reads it back with `SAF`.
    public func setSafeMode(_ seconds: UInt8, at link: NewEraLink) async throws(DeviceConfigurationError) -> UInt8 {
        let pump = open(link, safeMode: seconds)
        defer { pump.close() }
        _ = try await identify(pump, link)
        switch await pump.readSafeMode() {
        case .confirmed(let stored) where stored == seconds:
            logger.notice("New Era safe mode set", metadata: ["seconds": "\(seconds)"])
            return stored
        case .confirmed(let stored):
            throw DeviceConfigurationError("the pump reports a safe-mode time-out of \(stored) s after SAF\(seconds): it did not take the setting; repeat, or set it on the pump")
        case let .refused(refusal):
            throw DeviceConfigurationError("the pump refused the SAF query (\(refusal.code)): \(refusal.description); SAF\(seconds) may or may not be stored")
        case let .uncertain(reason):
            throw DeviceConfigurationError("no answer to the SAF query at \(link): \(reason); SAF\(seconds) may or may not be stored: repeat")
        }
    }

    private func open(_ link: NewEraLink, safeMode: UInt8) -> NewEraPump {
        let baud = BaudRate(rawValue: link.baudRate.rawValue) ?? .b19200
        let configuration = NewEraSession.Configuration(address: link.address, safeModeTimeoutSeconds: safeMode, replyTimeout: replyTimeout)
        return NewEraPump(path: link.path, baudRate: baud, configuration: configuration, clock: clock, reconnectInterval: .milliseconds(100))
    }

    private func identify(_ pump: NewEraPump, _ link: NewEraLink) async throws(DeviceConfigurationError) -> PumpIdentity {
        switch await pump.identify() {
        case .confirmed(let identity): return identity
        case let .refused(refusal):
            throw DeviceConfigurationError("the pump at \(link) refused VER (\(refusal.code)): \(refusal.description)")
        case let .uncertain(reason):
            throw DeviceConfigurationError("no New Era pump answers at \(link): \(reason). Check the cable, and give the pump's "
                + "current address (--address) and baud rate (--baud) as its panel shows them")
        }
    }

    private func confirm(_ link: NewEraLink, what: String) async throws(DeviceConfigurationError) -> PumpIdentity {
        let pump = open(link, safeMode: 0)
        defer { pump.close() }
        switch await pump.identify() {
        case .confirmed(let identity): return identity
        case let .refused(refusal):
            throw DeviceConfigurationError("the pump at \(link) refused VER (\(refusal.code)) after being set to \(what): the setting is not confirmed; check the pump's panel")
        case let .uncertain(reason):
            throw DeviceConfigurationError("the pump did not answer at \(link) after being set to \(what) (\(reason)): the setting is not confirmed; "
                + "check the pump's panel, then connect with its settings as shown there")
        }
    }
}

/// Sets a Nonin oximeter's serial data format through the Nonin driver (protocols.md §B1): the driver sends
/// the set-format command `02 70 02 02 ZZ 03` when it connects; the device answers ACK (06) or NAK (15)
/// (the 9560 accepts it only in the first 5 s after it is connected). The protocol has no query for the
/// format, so the read-back is the data itself: a valid sample decoded in the new format.
///
/// Streaming formats only (DF2, DF7, DF8): the drivers do not read DF13 spot-check records, so a switch to
/// DF13 could not be confirmed. Any task; each call opens and closes its own driver.
public struct NoninConfigurator: Sendable {
    /// The clock the driver uses.
    public let clock: any MonotonicClock
    private let logger = Logger(label: "infusion.calibration.configure.nonin")

    /// A configurator using `clock`.
    public init(clock: any MonotonicClock = SystemMonotonicClock()) { self.clock = clock }

    /// Sets the Nonin on `path` to `format`; returns the first sample decoded in it. Waits up to `limit`
    /// for the answer and the first sample.
    public func setFormat(_ format: Nonin.DataFormat, path: String, within limit: Duration = .seconds(5))
        async throws(DeviceConfigurationError) -> VitalSample {
        guard format != .df13 else {
            throw DeviceConfigurationError("DF13 (spot-check records) cannot be confirmed: the oximeter drivers read DF2, DF7 and DF8; "
                + "choose one of those (the controller needs a streaming format)")
        }
        let name = "DF\(format.rawValue)"
        let oximeter = NoninOximeter(path: path, configuration: .init(format: format, setFormatAtConnect: true), name: "nonin \(path)",
                                     clock: clock, reconnectInterval: .milliseconds(100))
        defer { oximeter.close() }
        let answer = AnswerBox()
        let watcher = Task {
            for await event in oximeter.events {
                guard case let .notice(notice) = event else { continue }
                switch notice {
                case .dataFormatAccepted, .dataFormatRefused, .noAnswer: answer.set(notice)
                default: continue
                }
            }
        }
        defer { watcher.cancel() }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            switch answer.value {
            case .dataFormatRefused?:
                throw DeviceConfigurationError("the Nonin on \(path) refused the switch to \(name) (NAK): a 9560 accepts it only in the first "
                    + "5 s after it is connected; unplug and replug it (or switch it off and on), then run this again at once")
            case .noAnswer?:
                throw DeviceConfigurationError("no answer (ACK or NAK) from a Nonin on \(path) to the switch to \(name): check the cable "
                    + "(9600 8N1) and that the device is a Nonin that takes the set-format command")
            case .dataFormatAccepted?:
                if let sample = oximeter.latestSample {
                    logger.notice("Nonin data format set", metadata: ["format": "\(name)", "path": "\(path)"])
                    return sample
                }
            default:
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if case .dataFormatAccepted? = answer.value {
            throw DeviceConfigurationError("the Nonin on \(path) accepted \(name) (ACK) but sent no valid \(name) data within "
                + "\(limit.humanReadable): check that a finger or simulator is in the probe, then run this again to confirm")
        }
        throw DeviceConfigurationError("no answer from a Nonin on \(path) within \(limit.humanReadable): check the cable and that it is switched on")
    }

    private final class AnswerBox: Sendable {
        private let state = Mutex<OximeterNotice?>(nil)
        var value: OximeterNotice? { state.withLock { $0 } }
        func set(_ notice: OximeterNotice) { state.withLock { if $0 == nil { $0 = notice } } }
    }
}
