/// Contec CMS50D+/E/F/CMS60C pulse oximeters, "Communication protocol of pulse oximeter V7.0"
/// (reference/protocols.md §B4a): 115200 8N1, packets of a type byte (bit 7 clear), a "high byte"
/// (bit 7 set) holding the real bit 7 of each data byte, and up to 7 data bytes (bit 7 set on the wire).
/// No checksum: the bit-7 pattern is the only framing.
///
/// * Drivers: send `Contec.ControlCommand.startRealTime` then `.keepAlive` every 5 s; read with
///   `Contec.DeviceStreamDecoder` (→ `Contec.DeviceMessage`, e.g. `.realTime(RealTimeData)`).
/// * Simulators: read with `Contec.HostStreamDecoder` (→ `Contec.HostMessage`), answer with
///   `Contec.RealTimeData.packet`, `Contec.CommandFeedback.packet`, … `.encoded()`.
///
/// Never enable XON/XOFF on this link: 0x11 and 0x13 are packet types. Pure; any thread.
public enum Contec {}

extension Contec {
    /// Up to 7 data bytes, stored inline (no heap allocation), indexed from 0 (= the spec's byte 2).
    public struct Payload: RandomAccessCollection, Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
        private var storage: UInt64 = 0
        /// Number of bytes, 0…7.
        public private(set) var count: Int = 0

        /// At most this many data bytes fit in one packet (the high byte has 7 usable bits).
        public static let capacity = 7

        /// An empty payload.
        public init() {}

        /// The payload `bytes`, or nil when there are more than 7.
        public init?<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
            for byte in bytes {
                guard count < Self.capacity else { return nil }
                storage |= UInt64(byte) << (8 * UInt64(count))
                count += 1
            }
        }

        /// A payload from a literal; bytes beyond 7 are dropped.
        public init(arrayLiteral elements: UInt8...) {
            for byte in elements.prefix(Self.capacity) { append(byte) }
        }

        /// Appends a byte; ignored when full.
        public mutating func append(_ byte: UInt8) {
            guard count < Self.capacity else { return }
            storage |= UInt64(byte) << (8 * UInt64(count))
            count += 1
        }

        /// The first index (always 0).
        public var startIndex: Int { 0 }
        /// One past the last index (`count`).
        public var endIndex: Int { count }

        /// The byte at `index` (0-based; 0 is the spec's "byte 2"). Out of range reads 0.
        public subscript(index: Int) -> UInt8 {
            guard index >= 0 && index < count else { return 0 }
            return UInt8(truncatingIfNeeded: storage >> (8 * UInt64(index)))
        }

        /// Human-readable text for logs and error messages.
        public var description: String { "[" + map { hex2($0) }.joined(separator: " ") + "]" }
    }

    /// One packet in either direction: a type (0…0x7F) and its real (decoded) data bytes.
    public struct Packet: Hashable, Sendable, CustomStringConvertible {
        /// The packet type (bit 7 clear).
        public let type: UInt8
        /// The data bytes with their real bit 7.
        public let payload: Payload

        /// A packet; nil when `type` has bit 7 set.
        public init?(type: UInt8, payload: Payload) {
            guard type & 0x80 == 0 else { return nil }
            self.type = type
            self.payload = payload
        }

        /// A packet of a type this codec defines (bit 7 is masked off; all such constants have it clear).
        init(fixedType: UInt8, payload: Payload) {
            type = fixedType & 0x7F
            self.payload = payload
        }

        /// Decodes wire bytes (type, high byte, data): nil unless the type has bit 7 clear and every
        /// other byte has it set, with at most 7 data bytes.
        public init?<Bytes: Collection<UInt8>>(wire: Bytes) {
            guard (2...9).contains(wire.count) else { return nil }
            var iterator = wire.makeIterator()
            guard let type = iterator.next(), let high = iterator.next(), type & 0x80 == 0, high & 0x80 != 0 else { return nil }
            var payload = Payload()
            var index = 0
            while let byte = iterator.next() {
                guard byte & 0x80 != 0 else { return nil }
                payload.append((byte & 0x7F) | (((high >> UInt8(index)) & 1) << 7))
                index += 1
            }
            self.type = type
            self.payload = payload
        }

        /// The wire bytes: type, high byte (bit i = real bit 7 of data byte i; bit 7 set), data bytes
        /// with bit 7 set.
        public func encoded() -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(2 + payload.count)
            encode(into: &bytes)
            return bytes
        }

        /// Appends the wire bytes to `bytes` (no allocation when capacity allows).
        public func encode(into bytes: inout [UInt8]) {
            var high: UInt8 = 0x80
            for (index, byte) in payload.enumerated() where byte & 0x80 != 0 { high |= 1 << UInt8(index) }
            bytes.append(type)
            bytes.append(high)
            for byte in payload { bytes.append(byte | 0x80) }
        }

        /// Human-readable text for logs and error messages.
        public var description: String { "type \(hex2(type)) \(payload)" }
    }

    /// Which way packets flow; the set of types and their lengths differ.
    public enum Direction: Hashable, Sendable {
        /// Oximeter → PC (uplink).
        case deviceToHost
        /// PC → oximeter (downlink).
        case hostToDevice

        /// The total length (type + high byte + data) of packets of `type`, or nil for a type this
        /// direction does not use.
        public func packetLength(type: UInt8) -> Int? {
            switch self {
            case .deviceToHost:
                switch type {
                case 0x01, 0x04, 0x05, 0x11, 0x15: 9
                case 0x07, 0x08, 0x0F, 0x12: 8
                case 0x09: 6
                case 0x0A, 0x0B: 4
                case 0x0D, 0x0E, 0x10: 3
                case 0x0C: 2
                default: nil
                }
            case .hostToDevice:
                switch type {
                case 0x7D, 0x04: 9
                default: nil
                }
            }
        }
    }

    /// Counters a packet decoder keeps. All only increase.
    public struct DecoderStatistics: Hashable, Sendable {
        /// Packets delivered.
        public var packetsDecoded = 0
        /// Packets cut short by the next type byte.
        public var truncatedPackets = 0
        /// Type bytes this direction does not use (skipped).
        public var unknownTypes = 0
        /// Data bytes outside any packet (skipped).
        public var bytesDiscarded = 0

        /// All zero.
        public init() {}
    }

    /// Finds packets in a byte stream using the bit-7 scheme: a byte with bit 7 clear is a type and
    /// starts a packet of the length the V7.0 table gives for it (in this direction); bytes with bit
    /// 7 set fill it. A type byte arriving early cuts the packet short (counted) and starts the next,
    /// so the decoder is back in step at the very next packet. Holds at most 9 bytes, inline; no
    /// allocation at all. One owner at a time.
    public struct PacketDecoder: ByteStreamDecoder {
        /// The direction whose types and lengths this decoder expects.
        public let direction: Direction
        private var type: UInt8 = 0
        private var high: UInt8 = 0
        private var payload = Payload()
        private var received = 0
        private var expected = 0
        /// Counters for diagnostics.
        public private(set) var statistics = DecoderStatistics()

        /// A decoder for packets flowing in `direction`.
        public init(direction: Direction) { self.direction = direction }

        /// Bytes held for the packet in progress (0…8 between calls).
        public var bufferedByteCount: Int { received }

        /// Consumes one byte; returns the packet it completes, if any.
        public mutating func push(_ byte: UInt8) -> Packet? {
            if byte & 0x80 == 0 {
                if received > 0 { statistics.truncatedPackets += 1 }
                received = 0
                payload = Payload()
                guard let length = direction.packetLength(type: byte) else {
                    statistics.unknownTypes += 1
                    return nil
                }
                type = byte
                expected = length
                received = 1
                return nil
            }
            guard received > 0 else {
                statistics.bytesDiscarded += 1
                return nil
            }
            if received == 1 {
                high = byte
            } else {
                let index = UInt8(received - 2)
                payload.append((byte & 0x7F) | (((high >> index) & 1) << 7))
            }
            received += 1
            guard received == expected else { return nil }
            received = 0
            statistics.packetsDecoded += 1
            return Packet(fixedType: type, payload: payload)
        }
    }
}
