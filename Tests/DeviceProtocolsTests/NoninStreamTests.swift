import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

enum NoninSamples {
    static func rate<R: RandomNumberGenerator>(_ rng: inout R) -> PulseRate? {
        Int.random(in: 0..<5, using: &rng) == 0 ? nil : .beatsPerMinute(Double(Int.random(in: 0...510, using: &rng)))
    }

    static func saturation<R: RandomNumberGenerator>(_ rng: inout R) -> Percentage? {
        Int.random(in: 0..<5, using: &rng) == 0 ? nil : .percent(Double(Int.random(in: 0...126, using: &rng)))
    }

    static func values<R: RandomNumberGenerator>(_ rng: inout R) -> Nonin.PacketValues {
        Nonin.PacketValues(
            heartRate: rate(&rng), spo2: saturation(&rng), revision: UInt8.random(in: 0...127, using: &rng),
            timerTicks: UInt16.random(in: 0...0x3FFF, using: &rng), status2: Nonin.Status2(rawValue: UInt8.random(in: 0...127, using: &rng) & 0x21),
            spo2Display: saturation(&rng), spo2Fast: saturation(&rng), spo2BeatToBeat: saturation(&rng),
            extendedHeartRate: rate(&rng), extendedSpO2: saturation(&rng), extendedSpO2Display: saturation(&rng),
            heartRateDisplay: rate(&rng), extendedHeartRateDisplay: rate(&rng))
    }

    static func status<R: RandomNumberGenerator>(_ rng: inout R) -> Nonin.FrameStatus {
        Nonin.FrameStatus(rawValue: UInt8.random(in: 0...0x7E, using: &rng))
    }

    /// A packet's bytes with random statuses and pleth.
    static func packet<R: RandomNumberGenerator>(_ values: Nonin.PacketValues, _ format: Nonin.FrameFormat, _ rng: inout R) -> [UInt8] {
        let statuses = (0...25).map { _ in status(&rng) }
        let pleth = (0...25).map { _ in UInt16.random(in: 0...(format == .df2 ? 255 : 0xFFFF), using: &rng) }
        return values.encodedPacket(format, status: { statuses[$0] }, pleth: { pleth[$0] })
    }

    static func df8<R: RandomNumberGenerator>(_ rng: inout R) -> Nonin.DF8Record {
        Nonin.DF8Record(status: Nonin.DF8Status(rawValue: UInt16.random(in: 0...0xFFFF, using: &rng)),
                        heartRate: rate(&rng), spo2: saturation(&rng))
    }
}

@Suite("Nonin round trips")
struct NoninRoundTripTests {
    @Test("property: packet values → DF2/DF7 bytes → chunked stream → the same values", arguments: Nonin.FrameFormat.allCases)
    func packets(format: Nonin.FrameFormat) async {
        await propertyCheck(count: 300, input: Gen.uint64(), Gen.int(in: 1...40)) { seed, maxChunk in
            var rng = seededRNG(seed)
            let values = (0..<3).map { _ in NoninSamples.values(&rng) }
            let stream = values.flatMap { NoninSamples.packet($0, format, &rng) }
            var decoder = Nonin.StreamDecoder(format: format)
            var packets: [Nonin.PacketValues] = []
            var frames = 0
            for chunk in randomChunks(stream, maxChunk: maxChunk, using: &rng) {
                decoder.push(contentsOf: chunk) { decoded in
                    frames += 1
                    if let packet = decoded.packet { packets.append(packet.values) }
                }
            }
            #expect(packets == values)
            #expect(frames == 75)
            #expect(decoder.statistics.bytesDiscarded == 0)
        }
    }

    @Test("property: any frame survives encode → decode in both formats")
    func frames() async {
        await propertyCheck(count: 1000, input: Gen.uint8(in: 0...0x7F), Gen.uint16(), Gen.uint8(in: 0...0x7F)) { status, pleth, float in
            let df7 = Nonin.Frame(status: Nonin.FrameStatus(rawValue: status), pleth: pleth, float: float)
            #expect(Nonin.Frame(df7.encoded(.df7), format: .df7) == df7)
            let df2 = Nonin.Frame(status: Nonin.FrameStatus(rawValue: status), pleth: pleth & 0xFF, float: float)
            #expect(Nonin.Frame(df2.encoded(.df2), format: .df2) == df2)
        }
    }

    @Test("property: DF8 records round-trip through a chunked stream")
    func df8() async {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var rng = seededRNG(seed)
            let records = (0..<10).map { _ in NoninSamples.df8(&rng) }
            var decoder = Nonin.DF8Decoder()
            var decoded: [Nonin.DF8Record] = []
            for chunk in randomChunks(records.flatMap { $0.encoded() }, maxChunk: 7, using: &rng) {
                decoder.push(contentsOf: chunk) { decoded.append($0) }
            }
            #expect(decoded == records)
        }
    }

    @Test("out-of-range values clamp; nil encodes as the missing value, never as 0")
    func clamping() throws {
        let values = Nonin.PacketValues(heartRate: .beatsPerMinute(900), spo2: .percent(150), heartRateDisplay: .beatsPerMinute(-5))
        let decoded = try #require(Nonin.PacketValues(floats: values.floats))
        #expect(decoded.heartRate == .beatsPerMinute(510))
        #expect(decoded.spo2 == .percent(126))
        #expect(decoded.heartRateDisplay == .beatsPerMinute(0))
        #expect(decoded.extendedHeartRate == nil)
        #expect(values.floatByte(frame: 3 + 0) == 126)
        #expect(Nonin.PacketValues().floatByte(frame: 3) == 127)
        #expect(Nonin.PacketValues().floatByte(frame: 1) == 3 && Nonin.PacketValues().floatByte(frame: 2) == 127)
        #expect(Nonin.DF8Record(heartRate: nil, spo2: nil).encoded() == [0x83, 0x7F, 0x7F, 0x00])
    }
}

@Suite("Nonin decoder robustness")
struct NoninRobustnessTests {
    static func junk<R: RandomNumberGenerator>(_ rng: inout R, valid: [UInt8]) -> [UInt8] {
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return rng.bytes(Int.random(in: 0...60, using: &rng))
        case 1: return Array(valid.prefix(Int.random(in: 0..<valid.count, using: &rng)))
        default:
            var corrupted = valid
            corrupted[Int.random(in: 0..<corrupted.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            return corrupted
        }
    }

    @Test("10 000 bursts of garbage between packets: bounded, never trapped, every frame from the next packet's second on decodes, and a packet is never wrong",
          arguments: Nonin.FrameFormat.allCases)
    func resynchronises(format: Nonin.FrameFormat) throws {
        // Garbage that ends in part of a frame can combine with the next real frame into 5 bytes that
        // pass the checksum by chance (about 1 in 1000): then that real frame is lost. If it was the
        // SYNC frame, so is its packet. What must never happen is a packet with a wrong value.
        var rng = seededRNG(format == .df2 ? 0xD2 : 0xD7)
        var decoder = Nonin.StreamDecoder(format: format)
        var packetsLost = 0
        var maxBuffered = 0
        for _ in 0..<10_000 {
            let otherPacket = NoninSamples.packet(NoninSamples.values(&rng), format, &rng)
            let garbage = Self.junk(&rng, valid: Array(otherPacket.prefix(Int.random(in: 5...25, using: &rng))))
            let values = NoninSamples.values(&rng)
            let packet = NoninSamples.packet(values, format, &rng)
            let realFrames = (0..<25).compactMap { Nonin.Frame(packet[($0 * 5)..<($0 * 5 + 5)], format: format) }
            var packets: [Nonin.PacketValues] = []
            var frames: [Nonin.Frame] = []
            for chunk in randomChunks(garbage + packet, maxChunk: 32, using: &rng) {
                decoder.push(contentsOf: chunk) { decoded in
                    frames.append(decoded.frame)
                    if let packet = decoded.packet { packets.append(packet.values) }
                }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            #expect(Array(frames.suffix(24)) == Array(realFrames.dropFirst()))
            #expect(packets.allSatisfy { $0 == values })
            if packets.isEmpty { packetsLost += 1 }
        }
        #expect(maxBuffered < 10)
        #expect(packetsLost < 50, "packets lost after garbage: \(packetsLost) of 10 000")
        #expect(decoder.statistics.bytesDiscarded > 0)
        #expect(decoder.packetsAssembled > 9_950)
    }

    @Test("a corrupted frame is counted as a checksum error, its packet is dropped, and the next packet decodes")
    func checksumError() throws {
        var rng = seededRNG(7)
        let first = NoninSamples.values(&rng), second = NoninSamples.values(&rng)
        var wire = NoninSamples.packet(first, .df2, &rng)
        wire[5 * 10 + 4] ^= 0x01  // frame 11's checksum
        wire += NoninSamples.packet(second, .df2, &rng)
        var decoder = Nonin.StreamDecoder(format: .df2)
        // Start locked on the first packet so the error is seen where a frame was expected.
        let packets = decoder.decode(wire).compactMap(\.packet)
        #expect(packets.map(\.values) == [second])
        #expect(decoder.statistics.checksumErrors == 1)
        #expect(decoder.incompletePackets == 1)
    }

    @Test("DF8: random bytes then a record: bounded, and the record decodes")
    func df8Resynchronises() {
        var rng = seededRNG(0xD8)
        var decoder = Nonin.DF8Decoder()
        var maxBuffered = 0
        for _ in 0..<10_000 {
            let record = NoninSamples.df8(&rng)
            let stream = rng.bytes(Int.random(in: 0...20, using: &rng)) + record.encoded()
            var last: Nonin.DF8Record?
            for chunk in randomChunks(stream, maxChunk: 6, using: &rng) {
                decoder.push(contentsOf: chunk) { last = $0 }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            #expect(last == record)
        }
        #expect(maxBuffered < 4)
    }

    @Test("host command decoder: garbage, truncated and corrupted commands, then after a pause a command: it decodes")
    func hostCommands() throws {
        // No checksum: `02 72` + `02 72 00 03` is itself a well-formed command, so only the pause
        // before the real command can separate them (as on a real device).
        var rng = seededRNG(0x70)
        var decoder = Nonin.HostCommandDecoder()
        let commands: [Nonin.HostCommand] = Nonin.DataFormat.allCases.map { .setDataFormat($0) } + [.getTime]
        var now: Int64 = 0
        var maxBuffered = 0
        for _ in 0..<10_000 {
            let command = commands.randomElement(using: &rng) ?? .getTime
            var last: Nonin.HostCommand?
            for chunk in randomChunks(Self.junk(&rng, valid: command.encoded), maxChunk: 8, using: &rng) {
                decoder.push(contentsOf: chunk, at: ms(now)) { last = $0 }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            now += 500
            for chunk in randomChunks(command.encoded, maxChunk: 8, using: &rng) {
                decoder.push(contentsOf: chunk, at: ms(now)) { last = $0 }
            }
            #expect(last == command)
        }
        #expect(maxBuffered <= decoder.maxPayload + 4)
    }
}
