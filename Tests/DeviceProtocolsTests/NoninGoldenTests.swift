import InfusionCore
import Testing
@testable import DeviceProtocols

/// Vectors from reference/protocols.md §B1 (real captured DF2 frames, the 9560 host commands).
@Suite("Nonin golden vectors")
struct NoninGoldenTests {
    @Test("captured DF2 frames decode, and encode back byte for byte")
    func capturedFrames() throws {
        let vectors: [(String, Nonin.Frame)] = [
            ("01 80 49 00 CA", Nonin.Frame(status: [], pleth: 0x49, float: 0x00)),
            ("01 80 46 4A 11", Nonin.Frame(status: [], pleth: 0x46, float: 0x4A)),
            ("01 81 AF 00 31", Nonin.Frame(status: .sync, pleth: 0xAF, float: 0x00)),
        ]
        for (wire, frame) in vectors {
            #expect(Nonin.Frame(hexBytes(wire), format: .df2) == frame)
            #expect(frame.encoded(.df2) == hexBytes(wire))
        }
        // The checksum example: (01 + 80 + 49 + 00) mod 256 = CA.
        #expect(Checksums.sum8(hexBytes("01 80 49 00")) == 0xCA)
        // A wrong checksum or framing bit is not a frame.
        #expect(Nonin.Frame(hexBytes("01 80 49 00 CB"), format: .df2) == nil)
        #expect(Nonin.Frame(hexBytes("02 80 49 00 CB"), format: .df2) == nil)
        #expect(Nonin.Frame(hexBytes("01 00 49 00 4A"), format: .df2) == nil)
        #expect(Nonin.Frame(hexBytes("01 80 49 80 4A"), format: .df2) == nil)

        // As a stream, in one go: the first two confirm each other, the third follows in sync.
        var decoder = Nonin.FrameDecoder(format: .df2)
        let frames = decoder.decode(vectors.flatMap { hexBytes($0.0) })
        #expect(frames == vectors.map(\.1))
        #expect(decoder.statistics.framesDecoded == 3)
        #expect(decoder.statistics.bytesDiscarded == 0)
        #expect(decoder.isSynchronised)
    }

    @Test("DF2 status bits, including the perfusion colours")
    func statusBits() {
        let all: Nonin.FrameStatus = [.sensorDisconnect, .artifact, .outOfTrack, .sensorAlarm, .redPerfusion, .greenPerfusion, .sync]
        #expect(all.rawValue == 0x7F)
        #expect(Nonin.FrameStatus(rawValue: 0xC0) == .sensorDisconnect)  // bit 7 is framing, not status
        #expect(Nonin.FrameStatus(rawValue: 0x20) == .artifact)
        #expect(Nonin.FrameStatus(rawValue: 0x10) == .outOfTrack)
        #expect(Nonin.FrameStatus(rawValue: 0x08) == .sensorAlarm)
        #expect(Nonin.FrameStatus(rawValue: 0x02).perfusion == .high)     // green
        #expect(Nonin.FrameStatus(rawValue: 0x06).perfusion == .marginal) // yellow
        #expect(Nonin.FrameStatus(rawValue: 0x04).perfusion == .low)      // red
        #expect(Nonin.FrameStatus(rawValue: 0x00).perfusion == .none)
        for perfusion in Nonin.Perfusion.allCases {
            #expect(Nonin.FrameStatus.artifact.with(perfusion: perfusion).perfusion == perfusion)
        }
    }

    @Test("packet float slots: 9-bit HR, SpO2, timer, STAT2, every display and extended value; 511/127 are missing")
    func packetSlots() throws {
        var floats = [UInt8](repeating: 0, count: 25)
        func set(_ frame: Int, _ value: UInt8) { floats[frame - 1] = value }
        set(1, 0); set(2, 72)                    // HR 72
        set(3, 98)                               // SpO2 98
        set(4, 0x15)                             // SREV
        set(6, 0x01); set(7, 0x02)               // timer (1 << 7) | 2 = 130 ticks
        set(8, 0x21)                             // STAT2: SPA + low battery
        set(9, 97); set(10, 96); set(11, 95)     // SpO2-D, Fast, B-B
        set(14, 2); set(15, 44)                  // E-HR 300
        set(16, 127)                             // E-SpO2 missing
        set(17, 94)                              // E-SpO2-D
        set(20, 3); set(21, 127)                 // HR-D missing (511)
        set(22, 0); set(23, 0)                   // E-HR-D 0 bpm: a real value, not missing
        let values = try #require(Nonin.PacketValues(floats: floats))
        #expect(values.heartRate == .beatsPerMinute(72))
        #expect(values.spo2 == .percent(98))
        #expect(values.revision == 0x15)
        #expect(values.timerTicks == 130)
        #expect(values.timer == .seconds(130) / 3)
        #expect(values.timer.components.seconds == 43)
        #expect(values.status2 == [.smartPoint, .lowBattery])
        #expect(values.spo2Display == .percent(97))
        #expect(values.spo2Fast == .percent(96))
        #expect(values.spo2BeatToBeat == .percent(95))
        #expect(values.extendedHeartRate == .beatsPerMinute(300))
        #expect(values.extendedSpO2 == nil)
        #expect(values.extendedSpO2Display == .percent(94))
        #expect(values.heartRateDisplay == nil)
        #expect(values.extendedHeartRateDisplay == .beatsPerMinute(0))
        #expect(values.floats == floats)
        #expect(Nonin.PacketValues(floats: floats.dropLast()) == nil)
    }

    @Test("a whole DF2 packet in a stream yields 25 frames and the packet on the 25th")
    func packetStream() throws {
        let values = Nonin.PacketValues(heartRate: .beatsPerMinute(64), spo2: .percent(97), heartRateDisplay: .beatsPerMinute(65))
        let wire = values.encodedPacket(.df2, status: { $0 <= 12 ? Nonin.FrameStatus.greenPerfusion : [] }, pleth: { UInt16($0 * 9) })
        #expect(wire.count == 125)
        #expect(Array(wire.prefix(5)) == [0x01, 0x83, 9, 0, 0x8D])  // SYNC + GPRF, pleth 9, HR MSB 0
        var decoder = Nonin.StreamDecoder(format: .df2)
        let decoded = decoder.decode(wire)
        #expect(decoded.count == 25)
        #expect(decoded.map(\.frameNumber) == (1...25).map { $0 })
        let packet = try #require(decoded.last?.packet)
        #expect(packet.values == values)
        #expect(packet.combinedStatus == [.sync, .greenPerfusion])
        #expect(decoded.dropLast().allSatisfy { $0.packet == nil })
    }

    @Test("DF7 frames: status first, 16-bit pleth")
    func df7() throws {
        let frame = Nonin.Frame(status: [.sync, .artifact], pleth: 0x1234, float: 0x55)
        let wire = frame.encoded(.df7)
        #expect(wire == [0xA1, 0x12, 0x34, 0x55, 0xA1 &+ 0x12 &+ 0x34 &+ 0x55])
        #expect(Nonin.Frame(wire, format: .df7) == frame)
        #expect(Nonin.Frame(wire, format: .df2) == nil)
    }

    @Test("DF8 records: bits as listed, 511/127 missing")
    func df8() throws {
        // HR 300 (HR8..7 = 10), artifact; SpO2-D 97; byte 4 low battery + SNSA.
        let wire: [UInt8] = [0x80 | 0x04 | 0x02, 0x2C, 0x61, 0x08 | 0x01]
        let record = try #require(Nonin.DF8Record(wire))
        #expect(record.heartRate == .beatsPerMinute(300))
        #expect(record.spo2 == .percent(97))
        #expect(record.status == [.artifact, .sensorAlarm, .lowBattery])
        #expect(record.encoded() == wire)

        let missing = try #require(Nonin.DF8Record([0x83, 0x7F, 0x7F, 0x20]))
        #expect(missing.heartRate == nil && missing.spo2 == nil)
        #expect(missing.status == .smartPoint)
        let flags = try #require(Nonin.DF8Record([0x80 | 0x20 | 0x10 | 0x08, 0, 0, 0]))
        #expect(flags.status == [.outOfTrack, .lowPerfusion, .marginalPerfusion])
        #expect(Nonin.DF8Record([0x00, 0, 0, 0]) == nil)
        #expect(Nonin.DF8Record([0x80, 0x80, 0, 0]) == nil)
    }

    @Test("host commands: set data format 02 70 02 02 ZZ 03, time, ACK 06 / NAK 15")
    func hostCommands() throws {
        #expect(Nonin.HostCommand.setDataFormat(.df2).encoded == hexBytes("02 70 02 02 02 03"))
        #expect(Nonin.HostCommand.setDataFormat(.df7).encoded == hexBytes("02 70 02 02 07 03"))
        #expect(Nonin.HostCommand.setDataFormat(.df8).encoded == hexBytes("02 70 02 02 08 03"))
        #expect(Nonin.HostCommand.setDataFormat(.df13).encoded == hexBytes("02 70 02 02 0D 03"))
        let time = try #require(Nonin.DeviceTime(year: 2050, month: 12, day: 31, hour: 14, minute: 30, second: 15))
        #expect(Nonin.HostCommand.setTime(time).encoded == hexBytes("02 72 06 32 0C 1F 0E 1E 0F 03"))
        #expect(Nonin.HostCommand.getTime.encoded == hexBytes("02 72 00 03"))
        #expect(Nonin.CommandReply.ack.encoded == [0x06])
        #expect(Nonin.CommandReply.nak.encoded == [0x15])
        #expect(Nonin.CommandReply(rawValue: 0x06) == .ack)
        #expect(Nonin.CommandReply(rawValue: 0x15) == .nak)

        var decoder = Nonin.HostCommandDecoder()
        let commands = decoder.decode(hexBytes("FF 02 70 02 02 02 03 00 02 72 06 32 0C 1F 0E 1E 0F 03 02 72 00 03 02 70 02 02 09 03"))
        #expect(commands == [.setDataFormat(.df2), .setTime(time), .getTime, .other(opcode: 0x70, payload: [0x02, 0x09])])
    }
}
