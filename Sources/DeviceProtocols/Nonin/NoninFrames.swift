/// Nonin pulse-oximeter serial formats (reference/protocols.md §B1): DF2 and DF7 (5-byte frames, 25
/// per packet, 75 frames/s), DF8 (4 bytes once a second), and the host commands that choose between
/// them.
///
/// * Drivers: `Nonin.StreamDecoder` (DF2/DF7 frames + packet values) or `Nonin.DF8Decoder`.
/// * Simulators: `Nonin.Frame.encoded(_:)`, `Nonin.PacketValues.floatByte(frame:)`,
///   `Nonin.DF8Record.encoded()`, and `Nonin.HostCommandDecoder` for what the host sends.
///
/// Missing values are `nil`, never 0: HR 511 and SpO2 127 on the wire decode to `nil` and `nil`
/// encodes back to them. Pure; any thread.
public enum Nonin {}

extension Nonin {
    /// The DF2/DF7 STATUS byte (bit 7, always 1 on the wire, is not part of the set).
    public struct FrameStatus: OptionSet, Hashable, Sendable, CustomStringConvertible {
        /// The bits or code as on the wire.
        public let rawValue: UInt8
        /// Creates a status from its bits (bit 7 is ignored).
        public init(rawValue: UInt8) { self.rawValue = rawValue & 0x7F }

        /// Bit 6, SNSD: sensor disconnected (OEM III; reserved on the 9560).
        public static let sensorDisconnect = FrameStatus(rawValue: 0x40)
        /// Bit 5, ARTF: artifact on this pulse.
        public static let artifact = FrameStatus(rawValue: 0x20)
        /// Bit 4, OOT: out of track (sustained absence of good pulses).
        public static let outOfTrack = FrameStatus(rawValue: 0x10)
        /// Bit 3, SNSA: sensor alarm (unusable data, finger removed).
        public static let sensorAlarm = FrameStatus(rawValue: 0x08)
        /// Bit 2, RPRF: red perfusion (see `perfusion`).
        public static let redPerfusion = FrameStatus(rawValue: 0x04)
        /// Bit 1, GPRF: green perfusion (see `perfusion`).
        public static let greenPerfusion = FrameStatus(rawValue: 0x02)
        /// Bit 0, SYNC: set on frame 1 of each 25-frame packet.
        public static let sync = FrameStatus(rawValue: 0x01)

        /// The pulse-amplitude indication carried by RPRF/GPRF (set for 12 frames per pulse).
        public var perfusion: Perfusion {
            switch (contains(.redPerfusion), contains(.greenPerfusion)) {
            case (false, false): .none
            case (false, true): .high
            case (true, true): .marginal
            case (true, false): .low
            }
        }

        /// This status with the perfusion bits set to `perfusion`.
        public func with(perfusion: Perfusion) -> FrameStatus {
            var status = subtracting([.redPerfusion, .greenPerfusion])
            switch perfusion {
            case .none: break
            case .high: status.insert(.greenPerfusion)
            case .marginal: status.formUnion([.redPerfusion, .greenPerfusion])
            case .low: status.insert(.redPerfusion)
            }
            return status
        }

        /// Human-readable text for logs and error messages.
        public var description: String {
            let names: [(FrameStatus, String)] = [
                (.sensorDisconnect, "SNSD"), (.artifact, "ARTF"), (.outOfTrack, "OOT"), (.sensorAlarm, "SNSA"),
                (.redPerfusion, "RPRF"), (.greenPerfusion, "GPRF"), (.sync, "SYNC"),
            ]
            return "[" + names.filter { contains($0.0) }.map(\.1).joined(separator: " ") + "]"
        }
    }

    /// Pulse amplitude as the RPRF/GPRF bits show it.
    public enum Perfusion: Hashable, Sendable, CaseIterable {
        /// 00: no pulse indication in this frame.
        case none
        /// GPRF only (green): high/good perfusion.
        case high
        /// Both (yellow): marginal perfusion.
        case marginal
        /// RPRF only (red): low or no perfusion.
        case low
    }

    /// Which 5-byte frame layout a stream uses.
    public enum FrameFormat: Hashable, Sendable, CaseIterable {
        /// `01 STATUS PLETH FLOAT CHK`, CHK = sum of the first four bytes mod 256; 8-bit pleth.
        case df2
        /// `STATUS PLETH_MSB PLETH_LSB FLOAT CHK`, CHK = sum of the first four bytes mod 256; 16-bit pleth.
        case df7
    }

    /// One DF2 or DF7 frame (1/75 s).
    public struct Frame: Hashable, Sendable {
        /// Status bits.
        public var status: FrameStatus
        /// The pleth sample: 0…255 in DF2, 0…65535 in DF7.
        public var pleth: UInt16
        /// The frame's FLOAT byte, 0…127; its meaning depends on the frame's position in the packet
        /// (see `PacketValues`).
        public var float: UInt8

        /// A frame. `float` is masked to 7 bits.
        public init(status: FrameStatus, pleth: UInt16, float: UInt8) {
            self.status = status
            self.pleth = pleth
            self.float = float & 0x7F
        }

        /// The frame's 5 bytes in `format`. DF2 carries an 8-bit pleth: larger values are clamped to 255.
        public func encoded(_ format: FrameFormat) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(5)
            encode(format, into: &bytes)
            return bytes
        }

        /// Appends the frame's 5 bytes in `format` to `bytes` (no allocation when capacity allows).
        public func encode(_ format: FrameFormat, into bytes: inout [UInt8]) {
            let statusByte = 0x80 | status.rawValue
            let head: (UInt8, UInt8, UInt8, UInt8)
            switch format {
            case .df2: head = (0x01, statusByte, UInt8(min(pleth, 255)), float & 0x7F)
            case .df7: head = (statusByte, UInt8(pleth >> 8), UInt8(pleth & 0xFF), float & 0x7F)
            }
            bytes.append(head.0)
            bytes.append(head.1)
            bytes.append(head.2)
            bytes.append(head.3)
            bytes.append(head.0 &+ head.1 &+ head.2 &+ head.3)
        }

        /// Decodes exactly 5 bytes in `format`, or nil when the framing bits or the checksum are wrong.
        public init?<Bytes: Collection<UInt8>>(_ bytes: Bytes, format: FrameFormat) {
            guard bytes.count == 5 else { return nil }
            var iterator = bytes.makeIterator()
            guard let b0 = iterator.next(), let b1 = iterator.next(), let b2 = iterator.next(),
                  let b3 = iterator.next(), let b4 = iterator.next()
            else { return nil }
            guard Self.plausible(format, position: 0, b0), Self.plausible(format, position: 1, b1),
                  Self.plausible(format, position: 3, b3), b0 &+ b1 &+ b2 &+ b3 == b4
            else { return nil }
            switch format {
            case .df2: self.init(status: FrameStatus(rawValue: b1), pleth: UInt16(b2), float: b3)
            case .df7: self.init(status: FrameStatus(rawValue: b0), pleth: UInt16(b1) << 8 | UInt16(b2), float: b3)
            }
        }

        /// Whether `byte` can sit at `position` (0…3) of a frame in `format` (checksum aside).
        static func plausible(_ format: FrameFormat, position: Int, _ byte: UInt8) -> Bool {
            switch (format, position) {
            case (.df2, 0): byte == 0x01
            case (.df2, 1), (.df7, 0): byte & 0x80 != 0
            case (_, 3): byte & 0x80 == 0
            default: true
            }
        }
    }

    /// Counters a frame decoder keeps. All only increase.
    public struct FrameStatistics: Hashable, Sendable {
        /// Frames delivered.
        public var framesDecoded = 0
        /// Frames whose layout was right but whose checksum was not, where a frame was expected.
        public var checksumErrors = 0
        /// Times the decoder lost frame alignment for another reason (bytes that could not start a frame
        /// where one was expected).
        public var framingErrors = 0
        /// Bytes dropped while hunting for a frame.
        public var bytesDiscarded = 0

        /// All zero.
        public init() {}
    }

    /// Finds DF2 or DF7 frames in a byte stream.
    ///
    /// While locked it reads 5-byte frames back to back and checks every framing bit and the checksum.
    /// On any error it drops one byte at a time until two good frames follow each other, and only then
    /// delivers them (the second through `nextPending()`, which `push(contentsOf:_:)` drains), so a
    /// chance match in garbage (about 1 in 1000 windows for DF7) is not taken for a frame. Holds at
    /// most 10 bytes; no allocation after `init`. One owner at a time.
    public struct FrameDecoder: ByteStreamDecoder {
        /// The layout this decoder reads.
        public let format: FrameFormat
        private var buffer: [UInt8]
        private var inSync = false
        private var pending: Frame?
        /// Counters for diagnostics.
        public private(set) var statistics = FrameStatistics()

        /// A decoder for `format`, hunting for frame alignment.
        public init(format: FrameFormat) {
            self.format = format
            buffer = []
            buffer.reserveCapacity(10)
        }

        /// Bytes held for frames in progress (at most 9 between calls).
        public var bufferedByteCount: Int { buffer.count }

        /// True while aligned on frame boundaries.
        public var isSynchronised: Bool { inSync }

        /// Consumes one byte; returns the frame it completes, if any.
        public mutating func push(_ byte: UInt8) -> Frame? {
            let earlier = pending
            pending = nil
            buffer.append(byte)
            let found = process()
            guard let earlier else { return found }
            // A frame confirmed by the previous byte and not drained: deliver it first.
            if let found { pending = found }
            return earlier
        }

        /// The second of two frames completed by one byte, if not yet returned.
        public mutating func nextPending() -> Frame? {
            defer { pending = nil }
            return pending
        }

        private mutating func process() -> Frame? {
            if inSync {
                if let frame = lockedStep() { return frame }
                if inSync { return nil }
            }
            while true {
                dropImplausiblePrefix()
                guard buffer.count >= 5 else { return nil }
                guard let first = Frame(buffer[0..<5], format: format) else {
                    dropFirst()
                    continue
                }
                if buffer.count < 10 {
                    if plausibleStart(from: 5) { return nil }
                    dropFirst()
                    continue
                }
                guard let second = Frame(buffer[5..<10], format: format) else {
                    dropFirst()
                    continue
                }
                buffer.removeAll(keepingCapacity: true)
                inSync = true
                statistics.framesDecoded += 2
                pending = second
                return first
            }
        }

        /// One byte while locked: returns a frame, or nil (still locked: waiting; unlocked: hunt).
        private mutating func lockedStep() -> Frame? {
            if buffer.count < 5 {
                if plausibleStart(from: 0) { return nil }
                statistics.framingErrors += 1
                inSync = false
                return nil
            }
            if let frame = Frame(buffer[0..<5], format: format) {
                buffer.removeAll(keepingCapacity: true)
                statistics.framesDecoded += 1
                return frame
            }
            statistics.checksumErrors += 1
            inSync = false
            dropFirst()
            return nil
        }

        private func plausibleStart(from start: Int) -> Bool {
            for position in 0..<min(buffer.count - start, 4)
            where !Frame.plausible(format, position: position, buffer[start + position]) {
                return false
            }
            return true
        }

        private mutating func dropImplausiblePrefix() {
            while !buffer.isEmpty && !plausibleStart(from: 0) { dropFirst() }
        }

        private mutating func dropFirst() {
            buffer.removeFirst()
            statistics.bytesDiscarded += 1
        }
    }
}
