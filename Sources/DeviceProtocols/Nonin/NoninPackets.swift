import InfusionCore

extension Nonin {
    /// STAT2 (float slot 8).
    public struct Status2: OptionSet, Hashable, Sendable {
        /// The bits or code as on the wire.
        public let rawValue: UInt8
        /// Creates a STAT2 value from its bits (bit 7 is always 0 on the wire and is dropped).
        public init(rawValue: UInt8) { self.rawValue = rawValue & 0x7F }
        /// Bit 5, SPA: a high-quality SmartPoint measurement.
        public static let smartPoint = Status2(rawValue: 0x20)
        /// Bit 0: low battery.
        public static let lowBattery = Status2(rawValue: 0x01)
    }

    /// The values a DF2/DF7 packet's 25 FLOAT bytes carry (frame numbers 1-based, as in the spec).
    ///
    /// Recording values (HR, SpO2, E-*) update every 1/3 s and go missing at once; "-D" display values
    /// update every 1.5 s and hold the last value for 10 s after finger removal (with SNSA set). HR and
    /// SpO2 are 4-beat averages, E- values 8-beat averages, "Fast" a fast 4-beat average, "B-B" beat to
    /// beat. `nil` means the device reported the value as missing (HR 511, SpO2 127).
    public struct PacketValues: Hashable, Sendable {
        /// Frames 1–2: HR, 4-beat average.
        public var heartRate: PulseRate?
        /// Frame 3: SpO2, 4-beat average.
        public var spo2: Percentage?
        /// Frame 4: SREV (sensor/software revision byte), raw.
        public var revision: UInt8
        /// Frames 6–7: the 1/3-second timer, 14 bits, raw ticks.
        public var timerTicks: UInt16
        /// Frame 8: STAT2.
        public var status2: Status2
        /// Frame 9: SpO2-D, display value.
        public var spo2Display: Percentage?
        /// Frame 10: SpO2 Fast.
        public var spo2Fast: Percentage?
        /// Frame 11: SpO2 B-B (beat to beat).
        public var spo2BeatToBeat: Percentage?
        /// Frames 14–15: E-HR, 8-beat average.
        public var extendedHeartRate: PulseRate?
        /// Frame 16: E-SpO2, 8-beat average.
        public var extendedSpO2: Percentage?
        /// Frame 17: E-SpO2-D, display value.
        public var extendedSpO2Display: Percentage?
        /// Frames 20–21: HR-D, display value.
        public var heartRateDisplay: PulseRate?
        /// Frames 22–23: E-HR-D, display value.
        public var extendedHeartRateDisplay: PulseRate?

        /// Frames per packet.
        public static let framesPerPacket = 25
        /// The wire value of a missing heart rate.
        public static let missingHeartRate: UInt16 = 511
        /// The wire value of a missing SpO2.
        public static let missingSpO2: UInt8 = 127

        /// Values with everything missing, revision/timer/STAT2 zero.
        public init(heartRate: PulseRate? = nil, spo2: Percentage? = nil, revision: UInt8 = 0, timerTicks: UInt16 = 0,
                    status2: Status2 = [], spo2Display: Percentage? = nil, spo2Fast: Percentage? = nil,
                    spo2BeatToBeat: Percentage? = nil, extendedHeartRate: PulseRate? = nil,
                    extendedSpO2: Percentage? = nil, extendedSpO2Display: Percentage? = nil,
                    heartRateDisplay: PulseRate? = nil, extendedHeartRateDisplay: PulseRate? = nil) {
            self.heartRate = heartRate
            self.spo2 = spo2
            self.revision = revision & 0x7F
            self.timerTicks = timerTicks & 0x3FFF
            self.status2 = status2
            self.spo2Display = spo2Display
            self.spo2Fast = spo2Fast
            self.spo2BeatToBeat = spo2BeatToBeat
            self.extendedHeartRate = extendedHeartRate
            self.extendedSpO2 = extendedSpO2
            self.extendedSpO2Display = extendedSpO2Display
            self.heartRateDisplay = heartRateDisplay
            self.extendedHeartRateDisplay = extendedHeartRateDisplay
        }

        /// The timer as a duration (ticks × 1/3 s).
        public var timer: Duration { .seconds(Int64(timerTicks)) / 3 }

        /// Decodes the 25 FLOAT bytes of one packet, frame 1 first. Nil unless exactly 25 are given.
        public init?<Floats: Collection<UInt8>>(floats: Floats) {
            guard floats.count == Self.framesPerPacket else { return nil }
            var slot = [UInt8](repeating: 0, count: Self.framesPerPacket + 1)  // 1-based
            for (index, value) in floats.enumerated() { slot[index + 1] = value & 0x7F }
            self.init(slot: { slot[$0] })
        }

        /// Decodes from a 1-based slot accessor (no allocation).
        init(slot: (Int) -> UInt8) {
            func rate(_ msb: Int, _ lsb: Int) -> PulseRate? {
                let value = UInt16(slot(msb) & 0x03) << 7 | UInt16(slot(lsb) & 0x7F)
                return value == Self.missingHeartRate ? nil : .beatsPerMinute(Double(value))
            }
            func saturation(_ index: Int) -> Percentage? {
                let value = slot(index) & 0x7F
                return value == Self.missingSpO2 ? nil : .percent(Double(value))
            }
            self.init(
                heartRate: rate(1, 2), spo2: saturation(3), revision: slot(4),
                timerTicks: UInt16(slot(6) & 0x7F) << 7 | UInt16(slot(7) & 0x7F),
                status2: Status2(rawValue: slot(8)), spo2Display: saturation(9), spo2Fast: saturation(10),
                spo2BeatToBeat: saturation(11), extendedHeartRate: rate(14, 15), extendedSpO2: saturation(16),
                extendedSpO2Display: saturation(17), heartRateDisplay: rate(20, 21), extendedHeartRateDisplay: rate(22, 23))
        }

        /// The FLOAT byte for frame `frame` (1…25) of a packet carrying these values; reserved frames
        /// and numbers outside 1…25 give 0. Heart rates are rounded to whole bpm and clamped to 0…510,
        /// SpO2 to 0…126 (511/127 mean missing); `nil` encodes as missing. No allocation: a simulator
        /// calls this once per frame.
        public func floatByte(frame: Int) -> UInt8 {
            func heartRateWire(_ rate: PulseRate?) -> UInt16 {
                guard let bpm = rate?.beatsPerMinute, bpm.isFinite else { return Self.missingHeartRate }
                return UInt16(min(510, max(0, bpm.rounded())))
            }
            func saturationWire(_ value: Percentage?) -> UInt8 {
                guard let percent = value?.percent, percent.isFinite else { return Self.missingSpO2 }
                return UInt8(min(126, max(0, percent.rounded())))
            }
            func msb(_ rate: PulseRate?) -> UInt8 { UInt8(heartRateWire(rate) >> 7) & 0x03 }
            func lsb(_ rate: PulseRate?) -> UInt8 { UInt8(heartRateWire(rate) & 0x7F) }
            switch frame {
            case 1: return msb(heartRate)
            case 2: return lsb(heartRate)
            case 3: return saturationWire(spo2)
            case 4: return revision & 0x7F
            case 6: return UInt8((timerTicks >> 7) & 0x7F)
            case 7: return UInt8(timerTicks & 0x7F)
            case 8: return status2.rawValue & 0x7F
            case 9: return saturationWire(spo2Display)
            case 10: return saturationWire(spo2Fast)
            case 11: return saturationWire(spo2BeatToBeat)
            case 14: return msb(extendedHeartRate)
            case 15: return lsb(extendedHeartRate)
            case 16: return saturationWire(extendedSpO2)
            case 17: return saturationWire(extendedSpO2Display)
            case 20: return msb(heartRateDisplay)
            case 21: return lsb(heartRateDisplay)
            case 22: return msb(extendedHeartRateDisplay)
            case 23: return lsb(extendedHeartRateDisplay)
            default: return 0
            }
        }

        /// All 25 FLOAT bytes, frame 1 first.
        public var floats: [UInt8] { (1...Self.framesPerPacket).map(floatByte(frame:)) }

        /// A whole packet's bytes in `format`: 25 frames whose FLOAT bytes carry these values, with
        /// SYNC set on frame 1 only. `status(n)` and `pleth(n)` give frame n's status (SYNC is managed
        /// here) and pleth sample. For simulators and tests.
        public func encodedPacket(_ format: FrameFormat, status: (Int) -> FrameStatus = { _ in [] },
                                  pleth: (Int) -> UInt16 = { _ in 0 }) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(5 * Self.framesPerPacket)
            for frame in 1...Self.framesPerPacket {
                var frameStatus = status(frame)
                if frame == 1 { frameStatus.insert(.sync) } else { frameStatus.remove(.sync) }
                Frame(status: frameStatus, pleth: pleth(frame), float: floatByte(frame: frame)).encode(format, into: &bytes)
            }
            return bytes
        }
    }

    /// One complete packet: the values of its 25 FLOAT bytes and the union of its frames' status bits.
    public struct Packet: Hashable, Sendable {
        /// What the packet's FLOAT bytes say.
        public var values: PacketValues
        /// Every status bit set in any of the packet's frames (SYNC included).
        public var combinedStatus: FrameStatus

        /// A packet.
        public init(values: PacketValues, combinedStatus: FrameStatus) {
            self.values = values
            self.combinedStatus = combinedStatus
        }
    }

    /// Collects frames into packets: a packet starts at a SYNC frame and completes at its 25th frame.
    /// A packet interrupted by an early SYNC, or frames outside a packet, are dropped and counted, so a
    /// lost frame never shifts values into the wrong slots. Fixed storage; no allocation after `init`.
    public struct PacketAssembler: Sendable {
        private var floats: [UInt8]
        private var count = 0
        private var collecting = false
        private var status: FrameStatus = []
        /// Packets completed.
        public private(set) var packetsAssembled = 0
        /// Packets abandoned because a SYNC frame came before the 25th frame (a frame was lost).
        public private(set) var incompletePackets = 0
        /// Frames dropped because no packet was in progress (before the first SYNC, or extra frames).
        public private(set) var framesOutsidePackets = 0

        /// An assembler waiting for the first SYNC frame.
        public init() {
            floats = [UInt8](repeating: 0, count: PacketValues.framesPerPacket + 1)
        }

        /// The 1-based position of the last frame added within its packet, or nil when outside a packet.
        public private(set) var lastFrameNumber: Int?

        /// Adds the next frame; returns the packet it completes, if any.
        public mutating func add(_ frame: Frame) -> Packet? {
            if frame.status.contains(.sync) {
                if collecting && count < PacketValues.framesPerPacket { incompletePackets += 1 }
                collecting = true
                count = 0
                status = []
            }
            guard collecting else {
                framesOutsidePackets += 1
                lastFrameNumber = nil
                return nil
            }
            count += 1
            floats[count] = frame.float
            status.formUnion(frame.status)
            lastFrameNumber = count
            guard count == PacketValues.framesPerPacket else { return nil }
            collecting = false
            packetsAssembled += 1
            let slots = floats
            return Packet(values: PacketValues(slot: { slots[$0] }), combinedStatus: status)
        }

        /// Tells the assembler that bytes were lost or frame alignment broke since the last frame: the
        /// packet in progress is abandoned (counted as incomplete), because a frame that straddled the
        /// gap may have passed its checksum by chance and would put a wrong value into a slot.
        public mutating func breakContinuity() {
            if collecting { incompletePackets += 1 }
            collecting = false
            count = 0
            status = []
        }

        /// Forgets the packet in progress (after a link reset).
        public mutating func reset() {
            collecting = false
            count = 0
            status = []
            lastFrameNumber = nil
        }
    }

    /// What `StreamDecoder` delivers for every good frame.
    public struct Decoded: Hashable, Sendable {
        /// The frame (status bits and pleth sample; 75 per second).
        public var frame: Frame
        /// Its 1-based position in the current packet, or nil before the first SYNC.
        public var frameNumber: Int?
        /// The packet this frame completed (every 25th frame), if any.
        public var packet: Packet?
    }

    /// DF2 or DF7 bytes in, frames and packets out: a `FrameDecoder` feeding a `PacketAssembler`.
    ///
    /// A packet is delivered only when its 25 frames arrived back to back with no byte dropped and no
    /// loss of alignment in between; otherwise it is abandoned and counted in `incompletePackets`. So a
    /// packet's values are never mixed from two packets or shifted by a lost frame (at worst a packet
    /// is lost, and the supervisor's staleness rule sees that).
    /// Bounded, allocation-free after `init`, resynchronises on its own; one owner at a time.
    public struct StreamDecoder: ByteStreamDecoder {
        private var frames: FrameDecoder
        private var assembler = PacketAssembler()
        private var disruptionsSeen = 0

        /// A decoder for `format`.
        public init(format: FrameFormat) { frames = FrameDecoder(format: format) }

        /// The layout this decoder reads.
        public var format: FrameFormat { frames.format }
        /// Frame-level counters.
        public var statistics: FrameStatistics { frames.statistics }
        /// Packets completed.
        public var packetsAssembled: Int { assembler.packetsAssembled }
        /// Packets abandoned because a frame was lost.
        public var incompletePackets: Int { assembler.incompletePackets }
        /// Bytes held (0…4 between calls).
        public var bufferedByteCount: Int { frames.bufferedByteCount }

        /// Consumes one byte; returns the frame it completes (with the packet, every 25th frame).
        public mutating func push(_ byte: UInt8) -> Decoded? {
            guard let frame = frames.push(byte) else { return nil }
            return assemble(frame)
        }

        /// A frame completed by the last byte but not yet returned (see `ByteStreamDecoder`).
        public mutating func nextPending() -> Decoded? {
            guard let frame = frames.nextPending() else { return nil }
            return assemble(frame)
        }

        private mutating func assemble(_ frame: Frame) -> Decoded {
            let statistics = frames.statistics
            let disruptions = statistics.bytesDiscarded + statistics.framingErrors + statistics.checksumErrors
            if disruptions != disruptionsSeen {
                disruptionsSeen = disruptions
                assembler.breakContinuity()
            }
            let packet = assembler.add(frame)
            return Decoded(frame: frame, frameNumber: assembler.lastFrameNumber, packet: packet)
        }
    }
}
