import InfusionCore

extension Nonin {
    /// The serial data formats a Nonin device can be switched to (`ZZ` of the set-format command).
    public enum DataFormat: UInt8, Hashable, Sendable, CaseIterable {
        /// DF2: 5-byte frames with an 8-bit pleth, 75 frames/s.
        case df2 = 0x02
        /// DF7: 5-byte frames with a 16-bit pleth, 75 frames/s.
        case df7 = 0x07
        /// DF8: 4 bytes once a second.
        case df8 = 0x08
        /// DF13: SmartPoint spot-check records (the 9560 default).
        case df13 = 0x0D
    }

    /// A date and time as the device's set/get-time commands carry it (binary, not BCD; year 2000–2127).
    public struct DeviceTime: Hashable, Sendable {
        /// Year, 2000…2127 (sent as year − 2000).
        public var year: Int
        /// Month 1…12.
        public var month: UInt8
        /// Day 1…31.
        public var day: UInt8
        /// Hour 0…23.
        public var hour: UInt8
        /// Minute 0…59.
        public var minute: UInt8
        /// Second 0…59.
        public var second: UInt8

        /// A time; nil when a field is out of range.
        public init?(year: Int, month: UInt8, day: UInt8, hour: UInt8, minute: UInt8, second: UInt8) {
            guard (2000...2127).contains(year), (1...12).contains(month), (1...31).contains(day),
                  hour < 24, minute < 60, second < 60 else { return nil }
            self.year = year
            self.month = month
            self.day = day
            self.hour = hour
            self.minute = minute
            self.second = second
        }

        var bytes: [UInt8] { [UInt8(year - 2000), month, day, hour, minute, second] }
    }

    /// A command from the host to the oximeter: `02 opcode length payload 03`.
    public enum HostCommand: Hashable, Sendable {
        /// `02 70 02 02 ZZ 03`: switch the output format (reply ACK 06 / NAK 15; the 9560 accepts it
        /// only in the first 5 s after connecting). Kept in non-volatile memory.
        case setDataFormat(DataFormat)
        /// `02 72 06 YY MM DD hh mm ss 03`: set the clock. No reply.
        case setTime(DeviceTime)
        /// `02 72 00 03`: ask for the clock (reply `02 F2 06 YY MM DD hh mm ss 03`).
        case getTime
        /// Any other well-framed command, kept raw.
        case other(opcode: UInt8, payload: [UInt8])

        /// Start of a command.
        public static let stx: UInt8 = 0x02
        /// End of a command.
        public static let etx: UInt8 = 0x03

        /// The command's bytes.
        public var encoded: [UInt8] {
            let (opcode, payload): (UInt8, [UInt8])
            switch self {
            case .setDataFormat(let format): (opcode, payload) = (0x70, [0x02, format.rawValue])
            case .setTime(let time): (opcode, payload) = (0x72, time.bytes)
            case .getTime: (opcode, payload) = (0x72, [])
            case let .other(code, data): (opcode, payload) = (code, Array(data.prefix(255)))
            }
            return [Self.stx, opcode, UInt8(payload.count)] + payload + [Self.etx]
        }

        /// Interprets a well-framed command.
        init(opcode: UInt8, payload: ArraySlice<UInt8>) {
            switch (opcode, payload.count) {
            case (0x70, 2) where payload.first == 0x02:
                if let format = DataFormat(rawValue: payload[payload.startIndex + 1]) {
                    self = .setDataFormat(format)
                    return
                }
            case (0x72, 0):
                self = .getTime
                return
            case (0x72, 6):
                let p = Array(payload)
                if let time = DeviceTime(year: 2000 + Int(p[0]), month: p[1], day: p[2], hour: p[3], minute: p[4], second: p[5]) {
                    self = .setTime(time)
                    return
                }
            default:
                break
            }
            self = .other(opcode: opcode, payload: Array(payload))
        }
    }

    /// The oximeter's one-byte answer to `setDataFormat`.
    public enum CommandReply: UInt8, Hashable, Sendable {
        /// 0x06: accepted.
        case ack = 0x06
        /// 0x15: refused (on the 9560: sent later than 5 s after connecting, or an unknown format).
        case nak = 0x15

        /// The reply's single byte.
        public var encoded: [UInt8] { [rawValue] }
    }

    /// Finds host commands (`02 opcode length payload 03`) in what a host sends; for simulators.
    /// A missing ETX or an over-long length drops the candidate and re-scans from the byte after its
    /// STX. Payload bounded by `maxPayload`; no allocation after `init` except each command's value.
    ///
    /// The commands carry no checksum, so after a truncated command only time can tell where the next
    /// one starts: feed bytes with `push(_:at:)` and a partial command is dropped after a gap of
    /// `interByteTimeout` (0.5 s by default; the Nonin documents read here give no figure, so this is
    /// the simulator's choice).
    public struct HostCommandDecoder: ByteStreamDecoder {
        private var buffer: [UInt8]
        private var replay: [UInt8]
        private var lastByteAt: MonotonicInstant?
        /// The longest payload accepted.
        public let maxPayload: Int
        /// A partial command is dropped when the next byte comes this long or longer after the previous one.
        public var interByteTimeout: Duration
        /// Partial commands dropped by the time-out.
        public private(set) var timeouts = 0
        /// Commands decoded.
        public private(set) var commandsDecoded = 0
        /// Bytes skipped outside commands or in rejected candidates.
        public private(set) var bytesDiscarded = 0

        /// A decoder accepting payloads up to `maxPayload` bytes.
        public init(maxPayload: Int = 16, interByteTimeout: Duration = .milliseconds(500)) {
            self.maxPayload = max(0, min(255, maxPayload))
            self.interByteTimeout = interByteTimeout
            buffer = []
            buffer.reserveCapacity(self.maxPayload + 4)
            replay = []
            replay.reserveCapacity(self.maxPayload + 4)
        }

        /// Bytes held for the command in progress.
        public var bufferedByteCount: Int { buffer.count }

        /// Consumes one byte; returns the command it completes, if any.
        ///
        /// Rarely, re-scanning a rejected candidate uncovers two complete commands at once; the second
        /// is then returned by `nextPending()` (which `push(contentsOf:_:)` calls for you).
        public mutating func push(_ byte: UInt8) -> HostCommand? {
            buffer.append(byte)
            return scan()
        }

        /// A command already complete in the buffer, if any (see `push`).
        public mutating func nextPending() -> HostCommand? { scan() }

        /// Consumes one byte that arrived at `instant`, first dropping a partial command if the gap since
        /// the previous byte is `interByteTimeout` or more.
        public mutating func push(_ byte: UInt8, at instant: MonotonicInstant) -> HostCommand? {
            if let last = lastByteAt, instant - last >= interByteTimeout, !buffer.isEmpty {
                bytesDiscarded += buffer.count
                buffer.removeAll(keepingCapacity: true)
                timeouts += 1
            }
            lastByteAt = instant
            return push(byte)
        }

        /// Consumes a chunk that arrived together at `instant`; calls `body` for every command, in order.
        public mutating func push<Bytes: Sequence<UInt8>>(
            contentsOf bytes: Bytes, at instant: MonotonicInstant, _ body: (HostCommand) throws -> Void
        ) rethrows {
            for byte in bytes {
                if let command = push(byte, at: instant) { try body(command) }
                while let command = nextPending() { try body(command) }
            }
        }

        private mutating func scan() -> HostCommand? {
            while !buffer.isEmpty {
                if buffer[0] != HostCommand.stx {
                    buffer.removeFirst()
                    bytesDiscarded += 1
                    continue
                }
                if buffer.count >= 3 && Int(buffer[2]) > maxPayload {
                    buffer.removeFirst()
                    bytesDiscarded += 1
                    continue
                }
                guard buffer.count >= 3, buffer.count >= Int(buffer[2]) + 4 else { return nil }
                let end = Int(buffer[2]) + 3
                guard buffer[end] == HostCommand.etx else {
                    buffer.removeFirst()
                    bytesDiscarded += 1
                    continue
                }
                let command = HostCommand(opcode: buffer[1], payload: buffer[3..<end])
                // Keep anything after the command (only possible after a re-scan) for the next call.
                replay.removeAll(keepingCapacity: true)
                replay.append(contentsOf: buffer[(end + 1)...])
                swap(&buffer, &replay)
                commandsDecoded += 1
                return command
            }
            return nil
        }
    }
}
