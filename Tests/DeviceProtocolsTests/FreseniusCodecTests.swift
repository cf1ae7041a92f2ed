import Foundation
import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

@Suite("Fresenius Base A / Agilia codec")
struct FreseniusCodecTests {
    static let stx: UInt8 = 0x02
    static let etx: UInt8 = 0x03

    static func module(_ slot: Int) throws -> FreseniusAddress { try #require(FreseniusAddress.module(slot)) }

    // MARK: Golden vectors

    @Test("Golden: message DC to address 1 → 02 31 44 43 34 37 03 (§A5)")
    func goldenConnectFrame() throws {
        let frame = try FreseniusCommand.connect.frame(to: Self.module(1))
        #expect(frame.bytes == [0x02, 0x31, 0x44, 0x43, 0x34, 0x37, 0x03])
        #expect(frame.checksum == 0x47)
        #expect(try FreseniusFrame(decoding: [0x02, 0x31, 0x44, 0x43, 0x34, 0x37, 0x03]) == frame)
        // Stand-alone pump: no address byte; 0xFF - (0x44 + 0x43) = 0x78.
        #expect(try FreseniusCommand.connect.frame(to: .standalone).bytes == [0x02] + ascii("DC78") + [0x03])
    }

    @Test("Golden: d64 = 10.0 mL/h and r3E8 = 1.000 mL (§A5)")
    func goldenVariables() throws {
        let variables = try FreseniusVariables(parsing: "d64;r3E8")
        #expect(variables.rate == .millilitresPerHour(10))
        #expect(variables.volumeInfused == .millilitres(1))
        #expect(variables.text == "d64;r3E8")
        #expect(try FreseniusRate(roundingDown: .millilitresPerHour(10)).hex == "64")
        #expect(try FreseniusVolume(roundingDown: .millilitres(1)).hex == "3E8")
        #expect(FreseniusRate(hex: "64")?.value == .millilitresPerHour(10))
        #expect(FreseniusVolume(hex: "3e8")?.value == .millilitres(1))
    }

    @Test("Golden: a reply frame from module 1 carrying d64;r3E8 decodes end to end")
    func goldenReplyFrame() throws {
        var decoder = FreseniusLinkDecoder()
        let events = decoder.decode([Self.stx] + ascii("1C;d64;r3E825") + [Self.etx])
        let frame = try #require(events.first.flatMap { if case let .frame(f) = $0 { f } else { nil } })
        #expect(events.count == 1)
        let reply = try FreseniusReply(frame: frame)
        #expect(reply.origin == (try Self.module(1)))
        #expect(reply.status == .correct)
        #expect(try reply.variables().rate == .millilitresPerHour(10))
        #expect(try reply.variables().volumeInfused == .millilitres(1))
        #expect(reply.acknowledgement == nil)
    }

    @Test("Link control bytes: ACK, NAK + digit, ENQ keep-alive and DC4 answer")
    func controlBytes() {
        #expect(FreseniusLink.acknowledgement == [0x06])
        #expect(FreseniusLink.negativeAcknowledgement(.badChecksum) == [0x15, 0x32])
        #expect(FreseniusLink.keepAlive == [0x05])
        #expect(FreseniusLink.keepAliveAnswer == [0x14])
        let digits = FreseniusNAKCode.allCases.map(\.rawValue)
        #expect(digits == ascii("1245678"))
    }

    // MARK: Rate rounding

    @Test("Rates round toward less drug to 0.1 mL/h")
    func rateRoundsDown() throws {
        let (command, rounded) = try FreseniusCommand.setRate(roundingDown: .millilitresPerHour(10.09))
        #expect(try command.message() == "PR;64")
        #expect(rounded.actual == .millilitresPerHour(10))
        #expect(rounded.wasRounded)
        #expect(try FreseniusRate(roundingDown: .millilitresPerHour(0.05)).tenths == 0)
        #expect(try FreseniusRate(roundingDown: .millilitresPerHour(0.29)).tenths == 2)
        #expect(try FreseniusRate(roundingDown: .millilitresPerHour(1200)).hex == "2EE0")
        #expect(try FreseniusRate(roundingDown: VolumeRate(5, .microlitresPerMinute)).tenths == 3)  // 0.3 mL/h exactly
        #expect(throws: FreseniusEncodingError.self) { try FreseniusRate(roundingDown: .millilitresPerHour(-1)) }
        #expect(throws: FreseniusEncodingError.self) { try FreseniusRate(roundingDown: .millilitresPerHour(.nan)) }
        #expect(throws: FreseniusEncodingError.self) { try FreseniusRate(roundingDown: .millilitresPerHour(1e12)) }
    }

    @Test("Property: rate hex never rounds up, loses less than 0.1 mL/h and decodes to what it sends")
    func rateProperty() async {
        await propertyCheck(count: 500, input: Gen.int(in: 0...120_000_000)) { units in
            let requested = VolumeRate(exactCanonicalValue: Decimal(units) / 10_000)
            let rate = try FreseniusRate(roundingDown: requested)
            #expect(rate.value <= requested)
            #expect((requested - rate.value).millilitresPerHour < 0.1 + 1e-9)
            #expect(FreseniusRate(hex: rate.hex)?.value == rate.value)
            let variable = try FreseniusVariable(text: "d" + rate.hex)
            #expect(variable == .rate(FreseniusRate(tenths: rate.tenths)))
        }
    }

    // MARK: Application layer

    @Test("Every application error code of §A5 has its own case, meaning and round trip")
    func applicationErrors() throws {
        let codes: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
                              0x12, 0x14, 0x15, 0x16, 0x1A, 0x1E, 0x1F, 0x20, 0x22, 0x24, 0x25]
        #expect(FreseniusApplicationError.listed.map(\.code) == codes)
        #expect(Set(FreseniusApplicationError.listed.map(\.meaning)).count == codes.count)
        for code in codes {
            let error = FreseniusApplicationError(code: code)
            if case .unlisted = error { Issue.record("code \(code) decoded as unlisted") }
            let reply = FreseniusReply(body: .incorrect(error))
            #expect(try FreseniusReply(frame: reply.frame()) == reply)
        }
        #expect(FreseniusApplicationError(code: 0x0C) == .messageTooLong)
        #expect(FreseniusApplicationError(code: 0x0C).meaning == "message too long (max 80)")
        #expect(FreseniusApplicationError(code: 0x13) == .unlisted(0x13))
        let frame = try FreseniusFrame(decoding: [Self.stx] + ascii("I;0C08") + [Self.etx])
        #expect(try FreseniusReply(frame: frame).body == .incorrect(.messageTooLong))
        #expect(throws: FreseniusMessageError.badErrorCode(text: "X")) {
            try FreseniusReply(frame: FreseniusFrame(address: .standalone, message: "I;X"))
        }
    }

    @Test("Message length rule: at most 80 characters, otherwise a typed error (and application error 0C)")
    func maximumMessageLength() throws {
        let eighty = "EP;" + String(repeating: "A", count: 77)
        #expect(try FreseniusFrame(address: .standalone, message: eighty).message.utf8.count == 80)
        let long = eighty + "A"
        #expect(throws: FreseniusEncodingError.messageTooLong(length: 81, limit: 80)) {
            try FreseniusFrame(address: .standalone, message: long)
        }
        #expect(throws: FreseniusEncodingError.messageTooLong(length: 81, limit: 80)) {
            try FreseniusCommand.other(code: "EP", arguments: [String(repeating: "A", count: 78)]).message()
        }
        // A simulator receiving an intact over-long message answers I;0C rather than NAK.
        let checksum = FreseniusLink.checksum(ascii(long))
        let bytes = [Self.stx] + ascii(long) + ascii(FreseniusHex.text(UInt32(checksum), minimumDigits: 2)) + [Self.etx]
        var decoder = FreseniusLinkDecoder()
        let events = decoder.decode(bytes)
        let frame = try #require(events.first.flatMap { if case let .frame(f) = $0 { f } else { nil } })
        do {
            _ = try FreseniusHostMessage(frame: frame)
            Issue.record("an 81-character command was accepted")
        } catch {
            #expect(error == .messageTooLong(length: 81))
            #expect(error.applicationError == .messageTooLong)
        }
    }

    @Test("Spontaneous events must be acknowledged with origin digit + status letter")
    func spontaneousAcknowledgement() throws {
        let event = try FreseniusReply(frame: FreseniusFrame(address: Self.module(1), message: "E;a1"))
        #expect(event.status == .event)
        let ack = try #require(event.acknowledgement)
        #expect(ack.bytes == [0x02, 0x31, 0x45, 0x38, 0x39, 0x03])  // 1E, 0xFF - (0x31 + 0x45) = 0x89
        #expect(try FreseniusHostMessage(frame: ack) == .spontaneousAcknowledgement(.event))
        let adjusted = FreseniusReply(origin: .standalone, body: .adjustedEvent(data: "d64"))
        #expect(adjusted.acknowledgement?.bytes == [0x02, 0x4D] + ascii(FreseniusHex.text(UInt32(0xFF - 0x4D), minimumDigits: 2)) + [0x03])
        #expect(FreseniusReply.acknowledgement(origin: .base, status: .correct) == nil)
        #expect(FreseniusReply.acknowledgement(origin: .base, status: .adjustedEvent)?.message == "M")
    }

    @Test("Commands encode to the documented messages and parse back")
    func commandMessages() throws {
        let expectations: [(FreseniusCommand, String)] = [
            (.connect, "DC"), (.disconnect, "FC"), (.mode(.local), "MO;1"), (.mode(.remote), "MO;2"),
            (.reset, "RZ"), (.powerOff, "OF"), (.silenceAlarm, "SI"),
            (.readVariables([.rate, .volumeInfused]), "LE;dr"), (.readVariables([.modules]), "LE;b"),
            (.enableSpontaneousVariables([.alarm, .error, .rate]), "DE;aed"), (.disableSpontaneousVariables, "AE"),
            (.readFixedVariable(.deviceType), "LF;b"), (.setRate(FreseniusRate(tenths: 0x64)), "PR;64"),
            (.pause, "PO"), (.bolus(arguments: []), "PB"), (.emptySyringeMode(arguments: []), "PF"),
            (.limitVolume(arguments: ["1F4"]), "PV;1F4"), (.resetVolumeInfused, "RV"),
            (.pressureLimit(arguments: []), "PP"), (.dynamicPressure(arguments: []), "PS"),
            (.other(code: "LP", arguments: []), "LP"),
        ]
        for (command, text) in expectations {
            #expect(try command.message() == text)
            #expect(try FreseniusCommand(message: text) == command)
            let frame = try command.frame(to: .base)
            #expect(try FreseniusHostMessage(frame: FreseniusFrame(decoding: frame.bytes)) == .command(command))
        }
        #expect(throws: FreseniusEncodingError.argumentContainsSeparator(argument: "1;2")) {
            try FreseniusCommand.bolus(arguments: ["1;2"]).message()
        }
        #expect(throws: FreseniusEncodingError.self) { try FreseniusCommand.readVariables([]).message() }
        #expect(throws: FreseniusEncodingError.self) { try FreseniusCommand.other(code: "ep", arguments: []).message() }
        #expect(throws: FreseniusMessageError.syntax(text: "LE;", expected: "LE;<variable letters>")) {
            try FreseniusCommand(message: "LE;")
        }
        #expect(throws: FreseniusMessageError.syntax(text: "MO;3", expected: "MO;1 or MO;2")) {
            try FreseniusCommand(message: "MO;3")
        }
        #expect(throws: FreseniusMessageError.syntax(text: "DC;1", expected: "DC takes no arguments")) {
            try FreseniusCommand(message: "DC;1")
        }
        #expect(throws: FreseniusMessageError.unknownCommand(text: "x")) { try FreseniusCommand(message: "x") }
        #expect(FreseniusMessageError.unknownCommand(text: "x").applicationError == .unknownCommand)
        #expect(FreseniusMessageError.syntax(text: "", expected: "").applicationError == .syntaxError)
    }

    @Test("Base replies: module count and bitmap")
    func baseVariables() throws {
        let reply = try FreseniusReply(frame: FreseniusFrame(decoding: [Self.stx] + ascii("0C;b3;i2E6") + [Self.etx]))
        #expect(reply.origin == .base)
        let variables = try reply.variables()
        #expect(variables.modules?.slots == [1, 2])
        #expect(variables.moduleCount == 2)
        #expect(FreseniusModuleSet(slots: [1, 3, 5]).rawValue == 0b10101)
        #expect(FreseniusModuleSet(rawValue: 0b10101).contains(slot: 5))
        #expect(!FreseniusModuleSet(rawValue: 0b10101).contains(slot: 2))
        let raw = try FreseniusVariables(parsing: "a1F;e0;m2;k1F4;s32")
        #expect(raw.hexValue(of: .alarm) == 0x1F)
        #expect(raw.rawValue(of: .bolusRate) == "1F4")
        #expect(raw.text == "a1F;e0;m2;k1F4;s32")
        #expect(throws: FreseniusMessageError.unknownVariable(text: "z1")) { try FreseniusVariables(parsing: "z1") }
        #expect(throws: FreseniusMessageError.badVariableValue(id: .rate, text: "G")) { try FreseniusVariables(parsing: "dG") }
    }

    @Test("Property: replies with random variables survive frame → stream → typed decode")
    func replyRoundTripProperty() async {
        await propertyCheck(count: 300, input: Gen.int(in: 0...5), Gen.uint32(in: 0...0xFFFFF), Gen.uint32(in: 0...0xFFFFFF), Gen.uint8(in: 0...31)) { slot, rateUnits, volumeUnits, bitmap in
            let origin = slot == 0 ? FreseniusAddress.standalone : (FreseniusAddress.module(slot) ?? .base)
            let variables = FreseniusVariables([
                .rate(FreseniusRate(tenths: rateUnits)), .volumeInfused(FreseniusVolume(thousandths: volumeUnits)),
                .modules(FreseniusModuleSet(rawValue: bitmap)),
            ])
            let reply = FreseniusReply(origin: origin, body: .correct(data: variables.text))
            var decoder = FreseniusLinkDecoder()
            let events = decoder.decode(try reply.frame().bytes)
            guard events.count == 1, case let .frame(frame) = events[0] else {
                Issue.record("reply did not decode: \(events)")
                return
            }
            let decoded = try FreseniusReply(frame: frame)
            #expect(decoded == reply)
            #expect(try decoded.variables() == variables)
            #expect(try decoded.variables().rate == FreseniusRate(tenths: rateUnits).value)
        }
    }

    // MARK: Link decoder

    @Test("Interleaved control bytes and frames decode in order, even a keep-alive inside a frame")
    func interleavedControlBytes() throws {
        let dc = try FreseniusCommand.connect.frame(to: .standalone)
        var stream: [UInt8] = [0x05]
        stream += [Self.stx] + ascii("C;d64B3") + [Self.etx]
        stream += [0x06, 0x15, 0x32, 0x14]
        stream += [Self.stx, 0x44, 0x05, 0x43] + ascii("78") + [Self.etx]  // ENQ in the middle of "DC"
        stream += [0x15, Self.stx] + ascii("DC78") + [Self.etx]         // NAK without its digit
        stream += [0x15, 0x5A]                                           // NAK with an unknown digit
        var decoder = FreseniusLinkDecoder()
        let events = decoder.decode(stream)
        let reply = try FreseniusFrame(decoding: [Self.stx] + ascii("C;d64B3") + [Self.etx])
        #expect(events == [
            .keepAlive, .frame(reply), .acknowledgement, .negativeAcknowledgement(.badChecksum), .keepAliveAnswer,
            .keepAlive, .frame(dc), .error(.missingNAKCode), .frame(dc), .error(.unknownNAKCode(byte: 0x5A)),
        ])
        #expect(decoder.statistics.frames == 3)
        #expect(decoder.statistics.controlBytes == 7)  // ENQ, ACK, NAK, DC4, ENQ, NAK, NAK
    }

    @Test("A NAK split across reads keeps its digit")
    func nakAcrossChunks() {
        var decoder = FreseniusLinkDecoder()
        #expect(decoder.decode([0x15]).isEmpty)
        #expect(decoder.decode([0x36]) == [.negativeAcknowledgement(.receiverNotReady)])
    }

    @Test("Bad frames surface with the NAK to send: checksum 2, address 4, length 7, control 8, reception 1")
    func badFramesCarryNAK() throws {
        var decoder = FreseniusLinkDecoder(maximumFrameLength: 16)
        var stream: [UInt8] = []
        stream += [Self.stx] + ascii("DC79") + [Self.etx]                 // wrong checksum
        stream += [Self.stx] + ascii("DCZZ") + [Self.etx]                 // checksum not hex
        let nineDC = FreseniusHex.text(UInt32(FreseniusLink.checksum(ascii("9DC"))), minimumDigits: 2)
        stream += [Self.stx] + ascii("9DC" + nineDC) + [Self.etx]         // address 9
        stream += [Self.stx] + ascii("7") + [Self.etx]                    // too short
        stream += [Self.stx] + [UInt8](repeating: 0x41, count: 40) + [Self.etx]  // too long
        stream += [Self.stx, 0x44, 0x01, 0x43] + ascii("78") + [Self.etx] // SOH inside
        stream += [Self.stx, 0x44, 0xC3] + ascii("78") + [Self.etx]       // 8-bit byte inside
        stream += [Self.stx] + ascii("DC7") + [Self.stx] + ascii("DC78") + [Self.etx]  // cut off, then good
        let events = decoder.decode(stream)
        let errors = events.compactMap { if case let .error(e) = $0 { e } else { nil } }
        #expect(errors.map(\.negativeAcknowledgement) == [
            .badChecksum, .badChecksum, .badAddress, .badFrameLength, .badFrameLength, .controlCharacter,
            .receptionProblem, .badFrameLength,
        ])
        #expect(errors.first == .checksumMismatch(message: "DC", received: 0x79, computed: 0x78))
        #expect(events.last == .frame(try FreseniusFrame(address: .standalone, message: "DC")))
        #expect(decoder.statistics.checksumErrors == 2)
        #expect(decoder.statistics.malformedFrames == 6)
        #expect(FreseniusFrameError.unknownNAKCode(byte: 0).negativeAcknowledgement == nil)
    }

    @Test("Every truncation of a frame yields no frame, and the next frame still decodes")
    func truncatedFrames() throws {
        let frames = try Self.sampleFrames()
        let good = try FreseniusCommand.pause.frame(to: .standalone)
        for frame in frames {
            let bytes = frame.bytes
            for cut in 0..<bytes.count {
                var decoder = FreseniusLinkDecoder()
                let partial = decoder.decode(bytes[..<cut])
                #expect(!partial.contains { if case .frame = $0 { true } else { false } })
                #expect(decoder.decode(good.bytes).last == .frame(good), "cut \(cut) of \(frame)")
            }
        }
    }

    static func sampleFrames() throws -> [FreseniusFrame] {
        let commands: [FreseniusCommand] = [
            .connect, .disconnect, .mode(.remote), .readVariables([.rate, .volumeInfused, .alarm]),
            .enableSpontaneousVariables([.rate]), .setRate(FreseniusRate(tenths: 280)), .pause, .resetVolumeInfused,
        ]
        var frames = try commands.map { try $0.frame(to: .standalone) }
        frames += try commands.map { try $0.frame(to: Self.module(3)) }
        frames.append(try FreseniusReply(origin: .base, body: .correct(data: "b3;i2")).frame())
        frames.append(try FreseniusReply(origin: Self.module(2), body: .event(data: "a1")).frame())
        frames.append(try FreseniusReply(body: .incorrect(.alarmPresent)).frame())
        return frames
    }

    @Test("Robustness: 5000 random chunks of noise, control bytes and corrupt frames never wedge the decoder")
    func randomStreams() throws {
        var rng = ClinicalStreamRNG(seed: 0xF4E5)
        let frames = try Self.sampleFrames()
        var stream: [UInt8] = []
        var expected: [FreseniusFrame] = []
        var corrupted = 0
        while stream.count < 100_000 {
            switch rng.int(in: 0...6) {
            case 0, 1:
                let frame = rng.element(of: frames)
                stream += frame.bytes
                expected.append(frame)
            case 2:
                stream += rng.noise(count: rng.int(in: 1...50), specials: [0x02, 0x03, 0x05, 0x06, 0x14, 0x15, 0x31])
            case 3:
                let bytes = rng.element(of: frames).bytes
                stream += bytes[..<rng.int(in: 1...(bytes.count - 1))]
            case 4:
                var bytes = rng.element(of: frames).bytes
                let index = rng.int(in: 1...(bytes.count - 4))
                bytes[index] = bytes[index] == 0x41 ? 0x42 : 0x41
                stream += bytes
                corrupted += 1
            case 5:
                stream += [rng.element(of: [0x05, 0x06, 0x14] as [UInt8])]
                if rng.chance(0.3) { stream += [0x15, rng.element(of: FreseniusNAKCode.allCases).rawValue] }
            default:
                stream += [0x02] + [UInt8](repeating: 0x4B, count: rng.int(in: 300...600))
            }
        }
        var decoder = FreseniusLinkDecoder()
        var decoded: [FreseniusFrame] = []
        var checksumErrors = 0
        var maxBuffered = 0
        var chunkCount = 0
        for chunk in rng.chunks(stream, maximum: 40) {
            chunkCount += 1
            decoder.feed(chunk) { event in
                switch event {
                case let .frame(frame): decoded.append(frame)
                case let .error(error) where error.negativeAcknowledgement == .badChecksum: checksumErrors += 1
                default: break
                }
            }
            maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
        }
        #expect(chunkCount > 4000)
        #expect(maxBuffered <= decoder.maximumFrameLength)
        #expect(isOrderedSubsequence(expected, of: decoded))
        // Noise can forge a frame: an 8-bit checksum matches by chance 1 time in 256.
        #expect(decoded.count - expected.count < 40)
        #expect(checksumErrors >= corrupted)
        #expect(decoder.statistics.checksumErrors == checksumErrors)
        let good = try FreseniusCommand.connect.frame(to: .base)
        #expect(decoder.decode([0x03] + good.bytes).last == .frame(good))
    }
}
