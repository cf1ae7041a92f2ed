import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

/// Random New Era messages, built from a seed so property checks can shrink and replay them.
enum NewEraSamples {
    static func number<R: RandomNumberGenerator>(_ rng: inout R) -> NewEra.Number {
        // Any 0…9999 with 0…3 decimals is within the grammar (at most 4 digits in all).
        let fraction = Int.random(in: 0...3, using: &rng)
        let scaled = Int.random(in: 0...9999, using: &rng)
        return NewEra.Number(scaledValue: scaled, fractionDigits: fraction) ?? NewEra.Number(unchecked: 0, fractionDigits: 0)
    }

    static func address<R: RandomNumberGenerator>(_ rng: inout R) -> NewEra.Address {
        NewEra.Address(Int.random(in: 0...99, using: &rng)) ?? .zero
    }

    static func command<R: RandomNumberGenerator>(_ rng: inout R) -> NewEra.Command {
        switch Int.random(in: 0..<20, using: &rng) {
        case 0: .queryDiameter
        case 1: .setDiameter(number(&rng))
        case 2: .queryRate
        case 3: .setRate(NewEra.RateSetting(number(&rng), NewEra.RateUnit.allCases.randomElement(using: &rng) ?? .millilitresPerHour))
        case 4: .queryVolume
        case 5: .setVolume(number(&rng))
        case 6: .setVolumeUnit(Bool.random(using: &rng) ? .microlitres : .millilitres)
        case 7: .setDirection(NewEra.Direction.allCases.randomElement(using: &rng) ?? .infuse)
        case 8: .run(phase: Bool.random(using: &rng) ? nil : Int.random(in: 1...340, using: &rng))
        case 9: .purge
        case 10: .stop
        case 11: .queryDispensed
        case 12: .clearDispensed(Bool.random(using: &rng) ? .infused : .withdrawn)
        case 13: .queryVersion
        case 14: .querySafeMode
        case 15: .setSafeMode(timeoutSeconds: UInt8.random(in: 0...255, using: &rng))
        case 16: .setAddress(address(&rng))
        case 17: .queryDirection
        case 18: .other(name: "BUZ", argument: String(Int.random(in: 0...1, using: &rng)))
        default: .stop
        }
    }

    static func packet<R: RandomNumberGenerator>(_ rng: inout R) -> NewEra.CommandPacket {
        let destination: NewEra.Destination
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: destination = .unaddressed
        case 1: destination = .system
        default: destination = .pump(address(&rng))
        }
        return NewEra.CommandPacket(destination, Int.random(in: 0..<8, using: &rng) == 0 ? nil : command(&rng))
    }

    static func reply<R: RandomNumberGenerator>(_ rng: inout R) -> NewEra.Reply {
        let status: NewEra.Status = Int.random(in: 0..<4, using: &rng) == 0
            ? .alarm(NewEra.Alarm.allCases.randomElement(using: &rng) ?? .reset)
            : .prompt(NewEra.Prompt.allCases.randomElement(using: &rng) ?? .stopped)
        let body: NewEra.Reply.Body
        switch Int.random(in: 0..<6, using: &rng) {
        case 0, 1: body = .none
        case 2: body = .error([.notRecognised, .notApplicable, .outOfRange, .invalidPacket, .ignored]
            .randomElement(using: &rng) ?? .outOfRange)
        case 3: body = .data(NewEra.Dispensed(infused: number(&rng), withdrawn: number(&rng), unit: .millilitres).replyText)
        case 4: body = .data(NewEra.RateSetting(number(&rng), .microlitresPerHour).replyText)
        default: body = .data(NewEra.Version(model: 1000, major: 3, minor: "928").replyText)
        }
        return NewEra.Reply(address: address(&rng), status: status, body: body)
    }
}

@Suite("New Era round trips")
struct NewEraRoundTripTests {
    @Test("property: any command packet survives encode → chunked stream → decode, in both framings")
    func commandRoundTrip() async {
        await propertyCheck(count: 500, input: Gen.uint64(), Gen.int(in: 1...12)) { seed, maxChunk in
            var rng = seededRNG(seed)
            let packets = (0..<5).map { _ in NewEraSamples.packet(&rng) }
            for mode in NewEra.FramingMode.allCases {
                var stream: [UInt8] = []
                for packet in packets { stream += (try? NewEra.Framing.encode(packet, mode: mode)) ?? [] }
                var decoder = NewEra.CommandDecoder()
                var decoded: [NewEra.Received<NewEra.CommandPacket>] = []
                for chunk in randomChunks(stream, maxChunk: maxChunk, using: &rng) {
                    decoder.push(contentsOf: chunk, at: .origin) { event in
                        if case .success(let received) = event { decoded.append(received) }
                    }
                }
                #expect(decoded == packets.map { NewEra.Received($0, framing: mode) })
                #expect(decoder.statistics.packetsDecoded == packets.count)
            }
        }
    }

    @Test("property: any reply survives encode → chunked stream → decode, mixing framings packet by packet")
    func replyRoundTrip() async {
        await propertyCheck(count: 500, input: Gen.uint64(), Gen.int(in: 1...12)) { seed, maxChunk in
            var rng = seededRNG(seed)
            let replies = (0..<6).map { _ in (NewEraSamples.reply(&rng), Bool.random(using: &rng) ? NewEra.FramingMode.safe : .basic) }
            var stream: [UInt8] = []
            for (reply, mode) in replies { stream += (try? NewEra.Framing.encode(reply, mode: mode)) ?? [] }
            var decoder = NewEra.ReplyDecoder()
            var decoded: [NewEra.Received<NewEra.Reply>] = []
            for chunk in randomChunks(stream, maxChunk: maxChunk, using: &rng) {
                decoder.push(contentsOf: chunk, at: .origin) { event in
                    if case .success(let received) = event { decoded.append(received) }
                }
            }
            #expect(decoded == replies.map { NewEra.Received($0.0, framing: $0.1) })
        }
    }

    @Test("typed reply data round-trips through the pump's own 4-digit formatting")
    func typedDataRoundTrip() async {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed throws in
            var rng = seededRNG(seed)
            let dispensed = NewEra.Dispensed(infused: NewEraSamples.number(&rng), withdrawn: NewEraSamples.number(&rng),
                                             unit: Bool.random(using: &rng) ? .microlitres : .millilitres)
            #expect(try NewEra.Dispensed(parsing: dispensed.replyText) == dispensed)
            let rate = NewEra.RateSetting(NewEraSamples.number(&rng), NewEra.RateUnit.allCases.randomElement(using: &rng) ?? .millilitresPerHour)
            #expect(try NewEra.RateSetting(parsing: rate.replyText) == rate)
            let volume = NewEra.VolumeSetting(NewEraSamples.number(&rng), .millilitres)
            #expect(try NewEra.VolumeSetting(parsing: volume.replyText) == volume)
            let version = NewEra.Version(model: Int.random(in: 100...9999, using: &rng), upgradeNumber: Bool.random(using: &rng) ? nil : 3,
                                         major: Int.random(in: 0...9, using: &rng), minor: String(Int.random(in: 0...999, using: &rng)))
            #expect(try NewEra.Version(parsing: version.replyText) == version)
        }
    }
}

@Suite("New Era decoder robustness")
struct NewEraRobustnessTests {
    /// Garbage of three kinds: random bytes, a truncated real packet, a real packet with one byte changed.
    static func garbage<R: RandomNumberGenerator>(_ rng: inout R, frame: [UInt8]) -> [UInt8] {
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return rng.bytes(Int.random(in: 0...60, using: &rng))
        case 1:
            let whole = frame
            guard !whole.isEmpty else { return [] }
            return Array(whole.prefix(Int.random(in: 0..<whole.count, using: &rng)))
        default:
            var whole = frame
            guard !whole.isEmpty else { return [] }
            let index = Int.random(in: 0..<whole.count, using: &rng)
            whole[index] ^= UInt8.random(in: 1...255, using: &rng)
            return whole
        }
    }

    @Test("reply decoder: 20 000 bursts of garbage never trap, stay bounded, and the next real reply always decodes")
    func replyDecoderResynchronises() throws {
        var rng = seededRNG(0xA1)
        var decoder = NewEra.ReplyDecoder()
        let bound = NewEra.DecoderConfiguration().maxDataLength + 4
        var maxBuffered = 0
        for _ in 0..<20_000 {
            let other = NewEraSamples.reply(&rng)
            let otherFrame = (try? NewEra.Framing.encode(other, mode: Bool.random(using: &rng) ? .safe : .basic)) ?? []
            let junk = Self.garbage(&rng, frame: otherFrame)
            let reply = NewEraSamples.reply(&rng)
            let mode: NewEra.FramingMode = Bool.random(using: &rng) ? .safe : .basic
            let stream = junk + (try NewEra.Framing.encode(reply, mode: mode))
            var last: NewEra.ReplyDecoder.Event?
            for chunk in randomChunks(stream, maxChunk: 16, using: &rng) {
                decoder.push(contentsOf: chunk, at: .origin) { last = $0 }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            #expect(try last?.get() == NewEra.Received(reply, framing: mode))
            #expect(!decoder.hasPartialPacket)
        }
        #expect(maxBuffered <= bound)
        let statistics = decoder.statistics
        #expect(statistics.packetsDecoded >= 20_000)
        #expect(statistics.framingErrors + statistics.checksumErrors + statistics.bytesSkipped > 0)
    }

    @Test("command decoder: 20 000 bursts of garbage, then a real safe packet, always decodes it")
    func commandDecoderResynchronisesSafe() throws {
        var rng = seededRNG(0xB2)
        var decoder = NewEra.CommandDecoder()
        let bound = NewEra.DecoderConfiguration().maxDataLength + 4
        var maxBuffered = 0
        for _ in 0..<20_000 {
            let otherFrame = (try? NewEra.Framing.safePacket(NewEraSamples.packet(&rng))) ?? []
            let junk = Self.garbage(&rng, frame: otherFrame)
            let packet = NewEraSamples.packet(&rng)
            let stream = junk + (try NewEra.Framing.safePacket(packet))
            var last: NewEra.CommandDecoder.Event?
            for chunk in randomChunks(stream, maxChunk: 16, using: &rng) {
                decoder.push(contentsOf: chunk, at: .origin) { last = $0 }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            #expect(try last?.get() == NewEra.Received(packet, framing: .safe))
        }
        #expect(maxBuffered <= bound)
    }

    @Test("command decoder, basic framing: after garbage, the command after the next CR and a 0.5 s pause always decodes")
    func commandDecoderResynchronisesBasic() throws {
        // Garbage ending in STX makes the next byte (CR = 13) a plausible safe length byte, so only the
        // pump's inter-byte time-out can tell that no safe packet is coming: the same is true of a real pump.
        var rng = seededRNG(0xC3)
        var decoder = NewEra.CommandDecoder()
        var now: Int64 = 0
        var maxBuffered = 0
        for _ in 0..<10_000 {
            let packet = NewEraSamples.packet(&rng)
            let junk = rng.bytes(Int.random(in: 0...80, using: &rng))
            var last: NewEra.CommandDecoder.Event?
            for chunk in randomChunks(junk, maxChunk: 16, using: &rng) {
                decoder.push(contentsOf: chunk, at: ms(now)) { last = $0 }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            now += 600
            for chunk in randomChunks([0x0D] + NewEra.Framing.basicCommand(packet), maxChunk: 16, using: &rng) {
                decoder.push(contentsOf: chunk, at: ms(now)) { last = $0 }
            }
            #expect(try last?.get() == NewEra.Received(packet, framing: .basic))
        }
        #expect(maxBuffered <= NewEra.DecoderConfiguration().maxDataLength + 4)
    }

    @Test("a corrupted safe packet is reported as a CRC mismatch (for ?COM) and the next packet still decodes")
    func checksumMismatchReported() throws {
        var wire = try NewEra.Framing.safePacket(NewEra.CommandPacket(address: .zero, .run(phase: nil)))
        wire[6] ^= 0x01  // CRC high byte
        var decoder = NewEra.CommandDecoder()
        let events = decoder.decode(wire + hexBytes("02 08 30 53 54 50 b3 f9 03"), at: .origin)
        #expect(events.count == 2)
        guard case .failure(.checksumMismatch(let received, let computed)) = events.first else {
            Issue.record("expected a checksum mismatch, got \(events)")
            return
        }
        #expect(received == 0x4507 && computed == 0x4407)
        #expect(try events[1].get().message == NewEra.CommandPacket(address: .zero, .stop))
        #expect(decoder.statistics.checksumErrors == 1)
    }

    @Test("oversized packets are dropped and counted; an unreadable reply is reported")
    func oversized() throws {
        var decoder = NewEra.ReplyDecoder()
        let long = [0x02] + ascii("00S" + String(repeating: "9", count: 60)) + [0x03]
        let events = decoder.decode(long + (try NewEra.Framing.safePacket(NewEra.Reply(address: .zero, status: .prompt(.infusing)))), at: .origin)
        #expect(events.count == 1)
        #expect(try events.first?.get().message.status == .prompt(.infusing))
        #expect(decoder.statistics.overlongPackets == 1)

        let unreadable = decoder.decode([0x02] + ascii("00Q") + [0x03], at: .origin)
        guard case .failure(.unreadable) = unreadable.first else {
            Issue.record("expected an unreadable-reply failure, got \(unreadable)")
            return
        }
        #expect(decoder.statistics.unreadablePackets == 1)
        #expect(decoder.statistics.packetsDecoded == 1)
    }
}

@Suite("New Era inter-byte time-out")
struct NewEraTimingTests {
    static let run = hexBytes("02 08 30 52 55 4e 44 07 03")

    @Test("a partial safe packet is discarded after a gap of 0.5 s or more; the next packet decodes")
    func discardAfterGap() throws {
        var decoder = NewEra.CommandDecoder()
        // First 5 bytes at t = 0, then silence; at t = 500 ms a whole new packet arrives.
        #expect(decoder.decode(Self.run.prefix(5), at: ms(0)).isEmpty)
        let events = decoder.decode(Self.run, at: ms(500))
        #expect(events.count == 1)
        #expect(try events.first?.get().message == NewEra.CommandPacket(address: .zero, .run(phase: nil)))
        #expect(decoder.statistics.timeouts == 1)
    }

    @Test("gaps shorter than the time-out keep the packet")
    func keepWithinTimeout() throws {
        var decoder = NewEra.CommandDecoder()
        var events: [NewEra.CommandDecoder.Event] = []
        for (index, byte) in Self.run.enumerated() {
            decoder.push(byte, at: ms(Int64(index) * 499)) { events.append($0) }
        }
        #expect(events.count == 1)
        #expect(try events.first?.get().message.command == .run(phase: nil))
        #expect(decoder.statistics.timeouts == 0)
    }

    @Test("the time-out discards, it does not splice: the tail of a stale packet is not read as a packet")
    func staleTailDoesNotSplice() {
        var decoder = NewEra.CommandDecoder()
        _ = decoder.decode(Self.run.prefix(4), at: ms(0))
        // The rest of the packet arrives late: the pump has already forgotten its start.
        let events = decoder.decode(Self.run.dropFirst(4), at: ms(600))
        #expect(events.allSatisfy { (try? $0.get()) == nil || (try? $0.get())?.framing == .basic })
        #expect((try? events.last?.get())?.message.command != .run(phase: nil))
        #expect(decoder.statistics.timeouts == 1)
    }

    @Test("the time-out is configurable, and off for basic framing unless asked for")
    func configurable() throws {
        var lenient = NewEra.CommandDecoder(configuration: .init(safeInterByteTimeout: nil))
        _ = lenient.decode(Self.run.prefix(5), at: ms(0))
        #expect(try lenient.decode(Self.run.dropFirst(5), at: ms(60_000)).first?.get().message.command == .run(phase: nil))

        var basic = NewEra.CommandDecoder()
        _ = basic.decode(ascii("0DI"), at: ms(0))
        #expect(try basic.decode(ascii("A\r"), at: ms(10_000)).first?.get().message.command == .queryDiameter)

        var strictBasic = NewEra.CommandDecoder(configuration: .init(basicInterByteTimeout: .milliseconds(100)))
        _ = strictBasic.decode(ascii("0DI"), at: ms(0))
        #expect(try strictBasic.decode(ascii("A\r"), at: ms(100)).first?.get().message.command == .other(name: "A", argument: ""))
        #expect(strictBasic.statistics.timeouts == 1)
    }
}
