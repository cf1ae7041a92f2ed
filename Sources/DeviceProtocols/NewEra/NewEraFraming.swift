extension NewEra {
    /// The two framings the pumps speak. Basic: host sends `data CR`, pump answers `STX data ETX`.
    /// Safe (after `SAF n`, n > 0): both directions use `STX len data CRChi CRClo ETX`.
    public enum FramingMode: String, Hashable, Sendable, CaseIterable {
        /// `cmd\r` → `STX resp ETX`; no integrity check.
        case basic
        /// `STX len data CRC16hi CRC16lo ETX`, CRC-16/XMODEM over `data`, len = len(data) + 4.
        case safe
    }

    /// Frame encoders. Pure; any thread; each call allocates only the returned array.
    public enum Framing {
        /// Start of a reply or safe packet.
        public static let stx: UInt8 = 0x02
        /// End of a reply or safe packet.
        public static let etx: UInt8 = 0x03
        /// End of a basic-mode command.
        public static let carriageReturn: UInt8 = 0x0D
        /// The most data one safe packet can carry (the length byte counts itself, the CRC and ETX).
        public static let maxSafeDataLength = 251

        /// A basic-mode command: the packet's text then CR ("0DIA\r").
        public static func basicCommand(_ packet: CommandPacket) -> [UInt8] {
            packet.bytes + [carriageReturn]
        }

        /// A basic-mode reply: STX, the reply's text, ETX (`02 "00S26.59" 03`).
        public static func basicReply(_ reply: Reply) -> [UInt8] {
            [stx] + reply.bytes + [etx]
        }

        /// A safe-mode packet around `data`: `STX len data CRC16hi CRC16lo ETX`, CRC-16/XMODEM of
        /// `data` only, len = len(data) + 4. Throws when `data` is longer than 251 bytes.
        public static func safePacket<Data: Collection<UInt8>>(_ data: Data) throws(EncodingError) -> [UInt8] {
            guard data.count <= maxSafeDataLength else { throw .packetTooLong(data.count) }
            let crc = Checksums.crc16XMODEM(data)
            var packet: [UInt8] = []
            packet.reserveCapacity(data.count + 5)
            packet.append(stx)
            packet.append(UInt8(data.count + 4))
            packet.append(contentsOf: data)
            packet.append(UInt8(crc >> 8))
            packet.append(UInt8(crc & 0xFF))
            packet.append(etx)
            return packet
        }

        /// A command packet in safe framing.
        public static func safePacket(_ packet: CommandPacket) throws(EncodingError) -> [UInt8] {
            try safePacket(packet.bytes)
        }

        /// A reply in safe framing.
        public static func safePacket(_ reply: Reply) throws(EncodingError) -> [UInt8] {
            try safePacket(reply.bytes)
        }

        /// A command packet in `mode`'s framing.
        public static func encode(_ packet: CommandPacket, mode: FramingMode) throws(EncodingError) -> [UInt8] {
            switch mode {
            case .basic: basicCommand(packet)
            case .safe: try safePacket(packet)
            }
        }

        /// A reply in `mode`'s framing.
        public static func encode(_ reply: Reply, mode: FramingMode) throws(EncodingError) -> [UInt8] {
            switch mode {
            case .basic: basicReply(reply)
            case .safe: try safePacket(reply)
            }
        }
    }

    /// A decoded message and the framing it arrived in (a simulator answers in the same framing; a
    /// driver sees when the pump is in safe mode).
    public struct Received<Message: Hashable & Sendable>: Hashable, Sendable {
        /// The message.
        public var message: Message
        /// The framing it came in.
        public var framing: FramingMode

        /// Pairs a message with its framing.
        public init(_ message: Message, framing: FramingMode) {
            self.message = message
            self.framing = framing
        }
    }

    /// A well-framed packet that could not be used. Reported so a simulator can answer `?COM` and a
    /// driver can log and retry; the decoder has already moved on.
    public enum DecodingFailure: Error, Hashable, Sendable, CustomStringConvertible {
        /// A safe packet whose CRC-16/XMODEM did not match its data.
        case checksumMismatch(received: UInt16, computed: UInt16)
        /// A reply whose content is not a valid reply.
        case unreadable(ParseError)

        /// Human-readable text for logs and error messages.
        public var description: String {
            switch self {
            case let .checksumMismatch(received, computed):
                "New Era safe-mode packet with a bad CRC (received 0x\(hex2(UInt8(received >> 8)))\(hex2(UInt8(received & 0xFF))), "
                    + "computed 0x\(hex2(UInt8(computed >> 8)))\(hex2(UInt8(computed & 0xFF)))): line noise or a wrong baud rate; "
                    + "the packet was dropped, resend the command"
            case .unreadable(let error):
                error.description
            }
        }
    }

    /// Counters a decoder keeps for diagnostics. All only increase (until `reset`).
    public struct DecoderStatistics: Hashable, Sendable {
        /// Packets delivered (good framing, good CRC, readable).
        public var packetsDecoded = 0
        /// Safe packets dropped for a bad CRC.
        public var checksumErrors = 0
        /// Packets abandoned for bad framing (bad length byte, missing ETX, stray STX, non-printable data).
        public var framingErrors = 0
        /// Partial packets discarded after an inter-byte gap of at least the time-out.
        public var timeouts = 0
        /// Packets dropped for being longer than the configured maximum.
        public var overlongPackets = 0
        /// Well-framed packets whose content could not be read.
        public var unreadablePackets = 0
        /// Bytes that arrived outside any packet and were skipped.
        public var bytesSkipped = 0

        /// All counters zero.
        public init() {}
    }

    /// Limits and timing shared by both New Era decoders.
    public struct DecoderConfiguration: Hashable, Sendable {
        /// Longest packet data accepted (bytes between the framing); longer packets are dropped and
        /// counted. Clamped to 1…43 so that a safe packet's length byte (≤ 47) can never be mistaken
        /// for the first digit of a basic reply.
        public var maxDataLength: Int
        /// A partial safe packet is discarded when the next byte arrives this long or longer after the
        /// previous one (the pump's 0.5 s rule). Nil: never.
        public var safeInterByteTimeout: Duration?
        /// The same for basic framing. Nil by default (a person may type basic commands in a terminal).
        public var basicInterByteTimeout: Duration?

        /// Defaults: 40 data bytes, 0.5 s in safe framing, no time-out in basic framing.
        public init(maxDataLength: Int = 40,
                    safeInterByteTimeout: Duration? = .milliseconds(500),
                    basicInterByteTimeout: Duration? = nil) {
            self.maxDataLength = min(43, max(1, maxDataLength))
            self.safeInterByteTimeout = safeInterByteTimeout
            self.basicInterByteTimeout = basicInterByteTimeout
        }
    }
}
