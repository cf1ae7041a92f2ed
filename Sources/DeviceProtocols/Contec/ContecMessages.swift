import InfusionCore

extension Contec {
    /// The real-time packet (type 0x01, 9 bytes, 60 per second while real-time is on).
    ///
    /// Invalid readings are nil: pulse rate 0xFF, SpO2 0x7F (or anything above 100), PI 0xFFFF.
    public struct RealTimeData: Hashable, Sendable {
        /// Byte 2 bits 0–3: signal strength, 0…8 (0…15 representable).
        public var signalStrength: UInt8
        /// Byte 2 bit 4: searching for too long.
        public var searchingTooLong: Bool
        /// Byte 2 bit 5: low SpO2.
        public var lowSpO2: Bool
        /// Byte 2 bit 6: pulse beep (a beat was detected).
        public var pulseBeep: Bool
        /// Byte 2 bit 7: probe error ("finger out"; pleth then reads 0x40).
        public var probeError: Bool
        /// Byte 3 bits 0–6: pleth sample, 0…127.
        public var pleth: UInt8
        /// Byte 3 bit 7: searching for a pulse.
        public var searchingPulse: Bool
        /// Byte 4 bits 0–3: bar graph, 0…15.
        public var barGraph: UInt8
        /// Byte 4 bit 4: the device marks PI invalid.
        public var perfusionIndexFlaggedInvalid: Bool
        /// Byte 5: pulse rate 0…254 bpm; nil for 0xFF.
        public var pulseRate: PulseRate?
        /// Byte 6: SpO2 0…100 %; nil for 0x7F (and for anything above 100).
        public var spo2: Percentage?
        /// Bytes 7 (low) and 8 (high): PI × 100, so 0.00…22.0 % (655.34 % representable); nil for 0xFFFF.
        public var perfusionIndex: Percentage?

        /// Real-time data; by default no pulse, no readings.
        public init(signalStrength: UInt8 = 0, searchingTooLong: Bool = false, lowSpO2: Bool = false, pulseBeep: Bool = false,
                    probeError: Bool = false, pleth: UInt8 = 0, searchingPulse: Bool = false, barGraph: UInt8 = 0,
                    perfusionIndexFlaggedInvalid: Bool = false, pulseRate: PulseRate? = nil, spo2: Percentage? = nil,
                    perfusionIndex: Percentage? = nil) {
            self.signalStrength = signalStrength & 0x0F
            self.searchingTooLong = searchingTooLong
            self.lowSpO2 = lowSpO2
            self.pulseBeep = pulseBeep
            self.probeError = probeError
            self.pleth = pleth & 0x7F
            self.searchingPulse = searchingPulse
            self.barGraph = barGraph & 0x0F
            self.perfusionIndexFlaggedInvalid = perfusionIndexFlaggedInvalid
            self.pulseRate = pulseRate
            self.spo2 = spo2
            self.perfusionIndex = perfusionIndex
        }

        /// The PI when both the flag and the value say it is valid; what a driver should use.
        public var usablePerfusionIndex: Percentage? { perfusionIndexFlaggedInvalid ? nil : perfusionIndex }

        /// The packet type.
        public static let type: UInt8 = 0x01

        /// Decodes a type-0x01 packet; nil for another type or fewer than 7 data bytes.
        public init?(_ packet: Packet) {
            guard packet.type == Self.type, packet.payload.count == 7 else { return nil }
            let p = packet.payload
            let pr = p[3], sat = p[4], pi = UInt16(p[6]) << 8 | UInt16(p[5])
            self.init(
                signalStrength: p[0] & 0x0F, searchingTooLong: p[0] & 0x10 != 0, lowSpO2: p[0] & 0x20 != 0,
                pulseBeep: p[0] & 0x40 != 0, probeError: p[0] & 0x80 != 0,
                pleth: p[1] & 0x7F, searchingPulse: p[1] & 0x80 != 0,
                barGraph: p[2] & 0x0F, perfusionIndexFlaggedInvalid: p[2] & 0x10 != 0,
                pulseRate: pr == 0xFF ? nil : .beatsPerMinute(Double(pr)),
                spo2: sat > 100 ? nil : .percent(Double(sat)),
                perfusionIndex: pi == 0xFFFF ? nil : .percent(Double(pi) / 100))
        }

        /// The packet carrying this data. Pulse rate is rounded and clamped to 0…254, SpO2 to 0…100,
        /// PI to 0…655.34 % in steps of 0.01 %; nil encodes as the invalid marker.
        public var packet: Packet {
            let b2 = signalStrength & 0x0F | (searchingTooLong ? 0x10 : 0) | (lowSpO2 ? 0x20 : 0)
                | (pulseBeep ? 0x40 : 0) | (probeError ? 0x80 : 0)
            let b3 = pleth & 0x7F | (searchingPulse ? 0x80 : 0)
            let b4 = barGraph & 0x0F | (perfusionIndexFlaggedInvalid ? 0x10 : 0)
            let pr: UInt8 = pulseRate.flatMap { $0.beatsPerMinute.isFinite ? UInt8(min(254, max(0, $0.beatsPerMinute.rounded()))) : nil } ?? 0xFF
            let sat: UInt8 = spo2.flatMap { $0.percent.isFinite ? UInt8(min(100, max(0, $0.percent.rounded()))) : nil } ?? 0x7F
            let pi: UInt16 = perfusionIndex.flatMap {
                $0.percent.isFinite ? UInt16(min(65534, max(0, ($0.percent * 100).rounded()))) : nil
            } ?? 0xFFFF
            return Packet(fixedType: Self.type, payload: [b2, b3, b4, pr, sat, UInt8(pi & 0xFF), UInt8(pi >> 8)])
        }
    }

    /// A control-command code (byte 2 of a 0x7D packet). An open set: unknown codes are kept, and a
    /// device answers them with feedback reason `unsupported`.
    public struct ControlCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The bits or code as on the wire.
        public let rawValue: UInt8
        /// Wraps a wire value (any value is accepted; unknown ones are kept).
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// A1: start real-time data.
        public static let startRealTime = ControlCode(rawValue: 0xA1)
        /// A2: stop real-time data (the device answers with free feedback 0x0C).
        public static let stopRealTime = ControlCode(rawValue: 0xA2)
        /// A3: query the number of stored segments.
        public static let querySegmentAmount = ControlCode(rawValue: 0xA3)
        /// A4: query a storage length (user, segment).
        public static let queryStorageLength = ControlCode(rawValue: 0xA4)
        /// A5: query a storage start time.
        public static let queryStorageStartTime = ControlCode(rawValue: 0xA5)
        /// A6: query storage data.
        public static let queryStorageData = ControlCode(rawValue: 0xA6)
        /// A7: stop sending storage data.
        public static let stopStorageData = ControlCode(rawValue: 0xA7)
        /// AA: query the device identifier (answer: type 0x04).
        public static let queryDeviceIdentifier = ControlCode(rawValue: 0xAA)
        /// AB: query user information.
        public static let queryUserInfo = ControlCode(rawValue: 0xAB)
        /// AC: query whether PI is supported.
        public static let queryPISupport = ControlCode(rawValue: 0xAC)
        /// AD: query the number of users.
        public static let queryUserAmount = ControlCode(rawValue: 0xAD)
        /// AE: delete storage (segment 0xFF = all).
        public static let deleteStorage = ControlCode(rawValue: 0xAE)
        /// AF: "inform device connected", the keep-alive; send every 5 s.
        public static let keepAlive = ControlCode(rawValue: 0xAF)
        /// B0: query storage identifiers.
        public static let queryStorageIdentifiers = ControlCode(rawValue: 0xB0)
        /// B1: synchronise the time (hour, minute, second).
        public static let syncTime = ControlCode(rawValue: 0xB1)
        /// B2: synchronise the date (send before B1).
        public static let syncDate = ControlCode(rawValue: 0xB2)
        /// B6: storage data identifiers.
        public static let storageDataIdentifiers = ControlCode(rawValue: 0xB6)

        /// Human-readable text for logs and error messages.
        public var description: String { hex2(rawValue) }
    }

    /// A control command (type 0x7D, always 9 bytes: type, high byte, code, 6 parameter bytes with
    /// unused ones 0x00).
    public struct ControlCommand: Hashable, Sendable {
        /// What to do.
        public var code: ControlCode
        /// Up to 6 parameter bytes; missing ones are sent as 0x00.
        public var parameters: Payload

        /// The packet type.
        public static let type: UInt8 = 0x7D

        /// A command; parameters beyond 6 are dropped.
        public init(_ code: ControlCode, parameters: Payload = Payload()) {
            self.code = code
            self.parameters = Payload(parameters.prefix(6)) ?? Payload()
        }

        /// `7D 81 A1 80 80 80 80 80 80`: start real-time data.
        public static let startRealTime = ControlCommand(.startRealTime)
        /// Stop real-time data.
        public static let stopRealTime = ControlCommand(.stopRealTime)
        /// `7D 81 AF 80 80 80 80 80 80`: the keep-alive, every 5 s.
        public static let keepAlive = ControlCommand(.keepAlive)
        /// Ask for the device identifier.
        public static let queryDeviceIdentifier = ControlCommand(.queryDeviceIdentifier)

        /// Set the device clock's time of day.
        public static func syncTime(hour: UInt8, minute: UInt8, second: UInt8) -> ControlCommand {
            ControlCommand(.syncTime, parameters: [hour, minute, second])
        }

        /// Decodes a 0x7D packet (parameters are the 6 bytes after the code, zeros included).
        public init?(_ packet: Packet) {
            guard packet.type == Self.type, packet.payload.count == 7 else { return nil }
            code = ControlCode(rawValue: packet.payload[0])
            parameters = Payload(packet.payload.dropFirst()) ?? Payload()
        }

        /// The 9-byte packet.
        public var packet: Packet {
            var payload: Payload = [code.rawValue]
            for index in 0..<6 { payload.append(parameters[index]) }
            return Packet(fixedType: Self.type, payload: payload)
        }

        /// The 9 wire bytes.
        public func encoded() -> [UInt8] { packet.encoded() }

        /// Equal when they encode to the same bytes/value.
        public static func == (lhs: Self, rhs: Self) -> Bool { lhs.packet == rhs.packet }
        /// Hashes what `==` compares.
        public func hash(into hasher: inout Hasher) { hasher.combine(packet) }
    }

    /// Why a device refused or finished a command (0x0B byte 3; also the 0x0D disconnect reason).
    public struct FeedbackReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The bits or code as on the wire.
        public let rawValue: UInt8
        /// Wraps a wire value (any value is accepted; unknown ones are kept).
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// 00: done.
        public static let done = FeedbackReason(rawValue: 0x00)
        /// 01: the device is shutting down.
        public static let shutdown = FeedbackReason(rawValue: 0x01)
        /// 02: the user changed.
        public static let userChange = FeedbackReason(rawValue: 0x02)
        /// 03: the device is recording.
        public static let recording = FeedbackReason(rawValue: 0x03)
        /// 04: deleting failed.
        public static let deleteFailed = FeedbackReason(rawValue: 0x04)
        /// 05: the command is not supported.
        public static let unsupported = FeedbackReason(rawValue: 0x05)
        /// FF: unknown.
        public static let unknown = FeedbackReason(rawValue: 0xFF)

        /// Human-readable text for logs and error messages.
        public var description: String {
            switch rawValue {
            case 0x00: "done"
            case 0x01: "shutdown"
            case 0x02: "user change"
            case 0x03: "recording"
            case 0x04: "delete failed"
            case 0x05: "unsupported"
            case 0xFF: "unknown"
            default: "reason \(hex2(rawValue))"
            }
        }
    }

    /// Command feedback (type 0x0B, 4 bytes): which command, and the reason.
    public struct CommandFeedback: Hashable, Sendable {
        /// The command answered.
        public var command: ControlCode
        /// The outcome.
        public var reason: FeedbackReason

        /// Feedback for `command`.
        public init(command: ControlCode, reason: FeedbackReason) {
            self.command = command
            self.reason = reason
        }

        /// The packet type.
        public static let type: UInt8 = 0x0B

        /// Decodes a 0x0B packet.
        public init?(_ packet: Packet) {
            guard packet.type == Self.type, packet.payload.count == 2 else { return nil }
            self.init(command: ControlCode(rawValue: packet.payload[0]), reason: FeedbackReason(rawValue: packet.payload[1]))
        }

        /// The packet.
        public var packet: Packet {
            Packet(fixedType: Self.type, payload: [command.rawValue, reason.rawValue])
        }
    }

    /// Device identifier text (type 0x04, 7 ASCII bytes, in both directions: the device's answer to
    /// `queryDeviceIdentifier`, or the host setting it). Trailing NUL bytes and spaces are not part of it.
    public struct DeviceIdentifier: Hashable, Sendable, CustomStringConvertible {
        /// The identifier, at most 7 ASCII characters.
        public let text: String

        /// The packet type.
        public static let type: UInt8 = 0x04

        /// An identifier: non-ASCII characters become "?", and it is cut to 7 characters.
        public init(_ text: String) {
            let ascii = text.unicodeScalars.map { $0.isASCII ? Character($0) : "?" }
            self.text = String(String(ascii).prefix(7))
        }

        /// Decodes a 0x04 packet.
        public init?(_ packet: Packet) {
            guard packet.type == Self.type else { return nil }
            var bytes = Array(packet.payload)
            while let last = bytes.last, last == 0x00 || last == 0x20 { bytes.removeLast() }
            self.init(String(decoding: bytes, as: UTF8.self))
        }

        /// The 9-byte packet (padded with 0x00).
        public var packet: Packet {
            var payload = Payload(text.utf8.prefix(7)) ?? Payload()
            while payload.count < 7 { payload.append(0x00) }
            return Packet(fixedType: Self.type, payload: payload)
        }

        /// Human-readable text for logs and error messages.
        public var description: String { text }
    }

    /// What an oximeter sends, decoded.
    public enum DeviceMessage: Hashable, Sendable {
        /// 0x01: a real-time sample (60 per second).
        case realTime(RealTimeData)
        /// 0x04: the device identifier.
        case deviceIdentifier(DeviceIdentifier)
        /// 0x0B: the answer to a control command.
        case commandFeedback(CommandFeedback)
        /// 0x0C: "free" feedback (e.g. after stop real-time).
        case freeFeedback
        /// 0x0D: the device is disconnecting, and why (reason codes as for feedback **[unverified]**).
        case disconnectNotice(FeedbackReason)
        /// Any other packet (storage, user info, …), raw.
        case other(Packet)

        /// Interprets a device → host packet.
        public init(_ packet: Packet) {
            switch packet.type {
            case RealTimeData.type:
                self = RealTimeData(packet).map(DeviceMessage.realTime) ?? .other(packet)
            case DeviceIdentifier.type:
                self = DeviceIdentifier(packet).map(DeviceMessage.deviceIdentifier) ?? .other(packet)
            case CommandFeedback.type:
                self = CommandFeedback(packet).map(DeviceMessage.commandFeedback) ?? .other(packet)
            case 0x0C:
                self = .freeFeedback
            case 0x0D where packet.payload.count == 1:
                self = .disconnectNotice(FeedbackReason(rawValue: packet.payload[0]))
            default:
                self = .other(packet)
            }
        }

        /// The packet carrying this message.
        public var packet: Packet {
            switch self {
            case .realTime(let data): data.packet
            case .deviceIdentifier(let identifier): identifier.packet
            case .commandFeedback(let feedback): feedback.packet
            case .freeFeedback: Packet(fixedType: 0x0C, payload: Payload())
            case .disconnectNotice(let reason): Packet(fixedType: 0x0D, payload: [reason.rawValue])
            case .other(let packet): packet
            }
        }

        /// The wire bytes.
        public func encoded() -> [UInt8] { packet.encoded() }
    }

    /// What a host sends, decoded (for simulators).
    public enum HostMessage: Hashable, Sendable {
        /// 0x7D: a control command.
        case control(ControlCommand)
        /// 0x04: set the device identifier.
        case setDeviceIdentifier(DeviceIdentifier)
        /// Anything else, raw.
        case other(Packet)

        /// Interprets a host → device packet.
        public init(_ packet: Packet) {
            switch packet.type {
            case ControlCommand.type: self = ControlCommand(packet).map(HostMessage.control) ?? .other(packet)
            case DeviceIdentifier.type: self = DeviceIdentifier(packet).map(HostMessage.setDeviceIdentifier) ?? .other(packet)
            default: self = .other(packet)
            }
        }

        /// The packet carrying this message.
        public var packet: Packet {
            switch self {
            case .control(let command): command.packet
            case .setDeviceIdentifier(let identifier): identifier.packet
            case .other(let packet): packet
            }
        }

        /// The wire bytes.
        public func encoded() -> [UInt8] { packet.encoded() }
    }

    /// Oximeter bytes in, `DeviceMessage`s out (driver side). Bounded (9 bytes), no allocation except
    /// the identifier text; resynchronises at the next type byte. One owner at a time.
    public struct DeviceStreamDecoder: ByteStreamDecoder {
        private var packets = PacketDecoder(direction: .deviceToHost)
        /// A decoder.
        public init() {}
        /// Packet-level counters.
        public var statistics: DecoderStatistics { packets.statistics }
        /// Bytes held for the packet in progress.
        public var bufferedByteCount: Int { packets.bufferedByteCount }
        /// Consumes one byte; returns the message it completes, if any.
        public mutating func push(_ byte: UInt8) -> DeviceMessage? { packets.push(byte).map(DeviceMessage.init) }
    }

    /// Host bytes in, `HostMessage`s out (simulator side). As `DeviceStreamDecoder`.
    public struct HostStreamDecoder: ByteStreamDecoder {
        private var packets = PacketDecoder(direction: .hostToDevice)
        /// A decoder.
        public init() {}
        /// Packet-level counters.
        public var statistics: DecoderStatistics { packets.statistics }
        /// Bytes held for the packet in progress.
        public var bufferedByteCount: Int { packets.bufferedByteCount }
        /// Consumes one byte; returns the message it completes, if any.
        public mutating func push(_ byte: UInt8) -> HostMessage? { packets.push(byte).map(HostMessage.init) }
    }
}
