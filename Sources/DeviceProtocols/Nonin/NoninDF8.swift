import InfusionCore

extension Nonin {
    /// DF8 status bits, from byte 1 (low byte of `rawValue`) and byte 4 (high byte).
    public struct DF8Status: OptionSet, Hashable, Sendable {
        /// The bits or code as on the wire.
        public let rawValue: UInt16
        /// Creates a status from its bits; only the defined bits are kept.
        public init(rawValue: UInt16) { self.rawValue = rawValue & 0x293C }

        /// Byte 1 bit 5, OOT: out of track.
        public static let outOfTrack = DF8Status(rawValue: 0x0020)
        /// Byte 1 bit 4, LPRF: low perfusion.
        public static let lowPerfusion = DF8Status(rawValue: 0x0010)
        /// Byte 1 bit 3, MPRF: marginal perfusion.
        public static let marginalPerfusion = DF8Status(rawValue: 0x0008)
        /// Byte 1 bit 2, ARTF: artifact.
        public static let artifact = DF8Status(rawValue: 0x0004)
        /// Byte 4 bit 5, SPA: high-quality SmartPoint measurement.
        public static let smartPoint = DF8Status(rawValue: 0x2000)
        /// Byte 4 bit 3, SNSA: sensor alarm.
        public static let sensorAlarm = DF8Status(rawValue: 0x0800)
        /// Byte 4 bit 0: low battery.
        public static let lowBattery = DF8Status(rawValue: 0x0100)
    }

    /// One DF8 record (4 bytes, once a second, no checksum):
    /// `1 R OOT LPRF MPRF ARTF HR8 HR7 | 0 HR6..HR0 | 0 SpO2-D | 0 R SPA R SNSA R R LOWBAT`.
    /// Byte 1 bit 6 and the "R" bits of byte 4 are reserved (possibly SNSD on OEM devices) and ignored.
    public struct DF8Record: Hashable, Sendable {
        /// Status bits.
        public var status: DF8Status
        /// HR-D, the 4-beat display average; nil when missing (511 on the wire).
        public var heartRate: PulseRate?
        /// SpO2-D; nil when missing (127 on the wire).
        public var spo2: Percentage?

        /// A record.
        public init(status: DF8Status = [], heartRate: PulseRate?, spo2: Percentage?) {
            self.status = status
            self.heartRate = heartRate
            self.spo2 = spo2
        }

        /// Decodes exactly 4 bytes, or nil when the sync bits (1, 0, 0, 0 in bit 7) are wrong.
        public init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
            guard bytes.count == 4 else { return nil }
            var iterator = bytes.makeIterator()
            guard let b1 = iterator.next(), let b2 = iterator.next(), let b3 = iterator.next(), let b4 = iterator.next(),
                  b1 & 0x80 != 0, b2 & 0x80 == 0, b3 & 0x80 == 0, b4 & 0x80 == 0
            else { return nil }
            let hr = UInt16(b1 & 0x03) << 7 | UInt16(b2)
            status = DF8Status(rawValue: UInt16(b1 & 0x3C) | UInt16(b4) << 8)
            heartRate = hr == PacketValues.missingHeartRate ? nil : .beatsPerMinute(Double(hr))
            spo2 = b3 == PacketValues.missingSpO2 ? nil : .percent(Double(b3))
        }

        /// The record's 4 bytes. HR is rounded and clamped to 0…510, SpO2 to 0…126; nil encodes as missing.
        public func encoded() -> [UInt8] {
            let hr: UInt16 = heartRate.flatMap { $0.beatsPerMinute.isFinite ? UInt16(min(510, max(0, $0.beatsPerMinute.rounded()))) : nil }
                ?? PacketValues.missingHeartRate
            let saturation: UInt8 = spo2.flatMap { $0.percent.isFinite ? UInt8(min(126, max(0, $0.percent.rounded()))) : nil }
                ?? PacketValues.missingSpO2
            return [
                0x80 | UInt8(status.rawValue & 0x3C) | UInt8(hr >> 7),
                UInt8(hr & 0x7F),
                saturation,
                UInt8(status.rawValue >> 8) & 0x29,
            ]
        }
    }

    /// Finds DF8 records in a byte stream: a byte with bit 7 set starts a record, three bytes with bit
    /// 7 clear complete it. A bit-7 byte inside a record restarts there (counted as a framing error);
    /// bit-7-clear bytes outside a record are skipped. Holds at most 3 bytes; no allocation after `init`.
    public struct DF8Decoder: ByteStreamDecoder {
        private var bytes: [UInt8]
        /// Counters: `framesDecoded`, `framingErrors`, `bytesDiscarded` (DF8 has no checksum).
        public private(set) var statistics = FrameStatistics()

        /// A decoder waiting for a sync byte.
        public init() {
            bytes = []
            bytes.reserveCapacity(4)
        }

        /// Bytes held for the record in progress (0…3 between calls).
        public var bufferedByteCount: Int { bytes.count }

        /// Consumes one byte; returns the record it completes, if any.
        public mutating func push(_ byte: UInt8) -> DF8Record? {
            if byte & 0x80 != 0 {
                if !bytes.isEmpty {
                    statistics.framingErrors += 1
                    statistics.bytesDiscarded += bytes.count
                    bytes.removeAll(keepingCapacity: true)
                }
                bytes.append(byte)
                return nil
            }
            guard !bytes.isEmpty else {
                statistics.bytesDiscarded += 1
                return nil
            }
            bytes.append(byte)
            guard bytes.count == 4 else { return nil }
            let record = DF8Record(bytes)
            bytes.removeAll(keepingCapacity: true)
            if record != nil { statistics.framesDecoded += 1 }
            return record
        }
    }
}
