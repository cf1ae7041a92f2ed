import Foundation
import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

@Suite("Alaris Asena codec")
struct AlarisCodecTests {
    // MARK: Golden vectors

    @Test("Golden frames from reference/protocols.md §A4")
    func goldenReferenceFrames() {
        #expect(AlarisCommand.queryInfusionStatus.frame == ascii("!INF|4961\r"))
        #expect(AlarisCommand.queryCommsProtocol.frame == ascii("!COMMS_PROTOCOL|E8DA\r"))
        #expect(AlarisCommand.querySerialNumber.frame == ascii("!INST_SERIALNO|457D\r"))
        #expect(AlarisCommand.start.frame == ascii("!INF_START|38F3\r"))
        #expect(AlarisCommand.stop.frame == ascii("!INF_STOP|CD57\r"))
    }

    @Test("Remote-control code of serial 8002-51740 is 3CC1, full frame !REMOTE_CTRL^ENABLED^3CC1|B1F1")
    func goldenRemoteCode() {
        let code = AlarisRemoteCode(serialNumber: "8002-51740")
        #expect(code.value == 0x3CC1)
        #expect(code.text == "3CC1")
        #expect(AlarisCommand.enableRemoteControl(code).frame == ascii("!REMOTE_CTRL^ENABLED^3CC1|B1F1\r"))
        let lease = AlarisCommand.remoteLease(serialNumber: "8002-51740")
        #expect(lease == [.enableRemoteControl(code), .enableRemoteConfiguration(code)])
        #expect(lease[1].message.text == "REMOTE_CFG^ENABLED^3CC1")
    }

    /// Further frames quoted in the OpenICE Asena sources (mdpnp `Asena.java` and its simulator
    /// bridge), each CRC recomputed independently with CRC-16/CCITT-FALSE before being pinned here.
    @Test("Command frames from the OpenICE Asena sources")
    func goldenOpenICECommands() throws {
        #expect(AlarisCommand.enableBolus.frame == ascii("!INF_BOLUS^ENABLED|E288\r"))
        #expect(AlarisCommand.queryVTBI.frame == ascii("!INF_VTBI|8456\r"))
        let vtbi = try AlarisVolume(roundingDown: .millilitres(11))
        #expect(AlarisCommand.activateVTBI(vtbi, then: .stop).frame == ascii("!INF_VTBI^ACTIV^11.000^ml^STOP|4433\r"))
        #expect(AlarisCommand.deactivateVTBI.frame == ascii("!INF_VTBI^DEACT|D8C5\r"))
        #expect(AlarisCommand.deactivateRemoteQuery.frame == ascii("!REMQUERY^DEACT|F295\r"))
        #expect(AlarisCommand.disableRemoteControl.frame == ascii("!REMOTE_CTRL^DISABLED|EF95\r"))
        #expect(AlarisCommand.queryResponseTimeMaximum.frame == ascii("!COMMS_RESPONSE_MAX|7E29\r"))
        let (rate350, _) = try AlarisCommand.setRate(roundingDown: .millilitresPerHour(3.5))
        #expect(rate350.frame == ascii("!INF_RATE^3.50^ml/h|3885\r"))
        let (rate010, _) = try AlarisCommand.setRate(roundingDown: .millilitresPerHour(0.1))
        #expect(rate010.frame == ascii("!INF_RATE^0.10^ml/h|D407\r"))
        #expect(AlarisCommand.queryRate.frame == ascii("!INF_RATE|" + AlarisHex.word(Checksums.crc16CCITTFalse(ascii("INF_RATE"))) + "\r"))
    }

    @Test("Reply frames from the OpenICE Asena sources decode to typed replies")
    func goldenOpenICEReplies() throws {
        func reply(_ text: String) throws -> AlarisReply {
            try AlarisReply(message: AlarisFrame.decode(ascii(text)))
        }
        #expect(try reply("!INST_SERIALNO^8002-51740|050B\r") == .serialNumber("8002-51740"))
        #expect(try reply("!INST_SERIALNO^8002-51733|ACFF\r") == .serialNumber("8002-51733"))
        #expect(try reply("!COMMS_PROTOCOL^Asena Rev 2.1.5|661A\r") == .commsProtocol("Asena Rev 2.1.5"))
        let enabled = try reply("!REMOTE_CTRL^ENABLED^****^PERMIT^0^ms|7BB0\r")
        #expect(enabled == .remoteControl(AlarisRemoteState(enabled: true, detail: ["****", "PERMIT", "0", "ms"])))
        if case let .remoteControl(state) = enabled { #expect(state.permitted == true) }
        #expect(try reply("!REMOTE_CTRL^DISABLED^****^PERMIT^0^ms|3C5D\r")
            == .remoteControl(AlarisRemoteState(enabled: false, detail: ["****", "PERMIT", "0", "ms"])))
        #expect(try reply("!REMQUERY^DEACT^^^^|E5C9\r") == .remoteQueryDeactivated)
        #expect(try reply("!INF_START|38F3\r") == .started)
        #expect(try reply("!INF_STOP|CD57\r") == .stopped)
        #expect(try reply("!INF_RATE^3.50^ml/h|3885\r") == .rate(.millilitresPerHour(3.5)))
        let responseMax = try reply("!COMMS_RESPONSE_MAX^4000^ms|DFDF\r")
        #expect(responseMax == .other(try AlarisMessage(keyword: "COMMS_RESPONSE_MAX", arguments: ["4000", "ms"])))
    }

    @Test("A simulator reproduces the pump's reply frames byte for byte")
    func simulatorRepliesAreExact() throws {
        #expect(try AlarisReply.serialNumber("8002-51740").frame() == ascii("!INST_SERIALNO^8002-51740|050B\r"))
        #expect(try AlarisReply.commsProtocol("Asena Rev 2.1.5").frame() == ascii("!COMMS_PROTOCOL^Asena Rev 2.1.5|661A\r"))
        #expect(try AlarisReply.remoteControl(AlarisRemoteState(enabled: true, detail: ["****", "PERMIT", "0", "ms"])).frame()
            == ascii("!REMOTE_CTRL^ENABLED^****^PERMIT^0^ms|7BB0\r"))
        #expect(try AlarisReply.rate(.millilitresPerHour(3.5)).frame() == ascii("!INF_RATE^3.50^ml/h|3885\r"))
        #expect(try AlarisReply.started.frame() == ascii("!INF_START|38F3\r"))
    }

    // MARK: Typed decoding of host commands (simulator side)

    @Test("Host frames decode to typed commands")
    func hostCommandsDecode() throws {
        func command(_ text: String) throws -> AlarisCommand {
            try AlarisCommand(message: AlarisFrame.decode(ascii(text)))
        }
        #expect(try command("!INST_SERIALNO|457D\r") == .querySerialNumber)
        #expect(try command("!INF|4961\r") == .queryInfusionStatus)
        #expect(try command("!REMOTE_CTRL^ENABLED^3CC1|B1F1\r") == .enableRemoteControl(AlarisRemoteCode(value: 0x3CC1)))
        #expect(try command("!REMOTE_CTRL^DISABLED|EF95\r") == .disableRemoteControl)
        #expect(try command("!INF_RATE^3.50^ml/h|3885\r") == .setRate(try AlarisRate(roundingDown: .millilitresPerHour(3.5))))
        #expect(try command("!INF_VTBI^DEACT|D8C5\r") == .deactivateVTBI)
        #expect(try command("!INF_VTBI^ACTIV^11.000^ml^STOP|4433\r")
            == .activateVTBI(try AlarisVolume(roundingDown: .millilitres(11)), then: .stop))
        #expect(try command("!INF_BOLUS^ENABLED|E288\r") == .enableBolus)
        #expect(try command("!REMQUERY^DEACT|F295\r") == .deactivateRemoteQuery)
        let vi = AlarisFrame.encode(AlarisMessage(unchecked: "INF_VI"))
        #expect(try command(String(decoding: vi, as: UTF8.self)) == .queryVolumeInfused)
        let unknown = try command("!INF_VI_CLEAR|A706\r")
        #expect(unknown == .unrecognized(try AlarisMessage(keyword: "INF_VI_CLEAR")))
    }

    @Test("Malformed fields of known keywords are typed errors, not guesses")
    func malformedFieldsThrow() throws {
        #expect(throws: AlarisMessageError.badNumber(keyword: "INF_RATE", text: "fast")) {
            try AlarisReply(message: AlarisMessage(keyword: "INF_RATE", arguments: ["fast", "ml/h"]))
        }
        #expect(throws: AlarisMessageError.badUnit(keyword: "INF_RATE", text: "mg/h", expected: "ml/h")) {
            try AlarisReply(message: AlarisMessage(keyword: "INF_RATE", arguments: ["3.50", "mg/h"]))
        }
        #expect(throws: AlarisMessageError.missingField(keyword: "INF_RATE", position: 2, meaning: "rate unit")) {
            try AlarisCommand(message: AlarisMessage(keyword: "INF_RATE", arguments: ["3.50"]))
        }
        #expect(throws: AlarisMessageError.badNumber(keyword: "INF_RATE", text: "-1")) {
            try AlarisCommand(message: AlarisMessage(keyword: "INF_RATE", arguments: ["-1", "ml/h"]))
        }
        #expect(throws: AlarisMessageError.unknownWord(keyword: "REMOTE_CTRL", text: "MAYBE", expected: "ENABLED or DISABLED")) {
            try AlarisCommand(message: AlarisMessage(keyword: "REMOTE_CTRL", arguments: ["MAYBE"]))
        }
        #expect(throws: AlarisMessageError.unknownWord(keyword: "REMOTE_CTRL", text: "XYZ", expected: "a four-digit hex remote-control code")) {
            try AlarisCommand(message: AlarisMessage(keyword: "REMOTE_CTRL", arguments: ["ENABLED", "XYZ"]))
        }
        #expect(throws: AlarisMessageError.missingField(keyword: "INST_SERIALNO", position: 1, meaning: "serial number")) {
            try AlarisReply(message: AlarisMessage(keyword: "INST_SERIALNO"))
        }
        #expect(throws: AlarisMessageError.invalidCharacter(field: "a|b", byte: 0x7C)) {
            try AlarisReply.serialNumber("a|b").frame()
        }
        #expect(throws: AlarisMessageError.emptyKeyword) { try AlarisMessage(text: "^X") }
    }

    @Test("Volume infused and VTBI replies are typed quantities")
    func quantityReplies() throws {
        let vi = try AlarisReply(message: AlarisMessage(keyword: "INF_VI", arguments: ["12.345", "ml"]))
        #expect(vi == .volumeInfused(.millilitres(12.345)))
        #expect(try vi.message().text == "INF_VI^12.345^ml")
        let vtbi = try AlarisReply(message: AlarisMessage(text: "INF_VTBI^ACTIV^11.000^ml^STOP"))
        #expect(vtbi == .vtbi(AlarisVTBIStatus(active: true, volume: .millilitres(11), endAction: .stop)))
        let off = try AlarisReply(message: AlarisMessage(text: "INF_VTBI^DEACT^^ml^"))
        #expect(off == .vtbi(AlarisVTBIStatus(active: false)))
        #expect(vtbi.answers(.queryVTBI))
        #expect(!vtbi.answers(.queryRate))
    }

    // MARK: Rate rounding

    @Test("Rates round toward less drug to 0.01 mL/h and report the rounding")
    func rateRoundsDown() throws {
        let (command, rounded) = try AlarisCommand.setRate(roundingDown: .millilitresPerHour(3.4567))
        #expect(command.message.text == "INF_RATE^3.45^ml/h")
        #expect(rounded.actual == .millilitresPerHour(3.45))
        #expect(rounded.requested == .millilitresPerHour(3.4567))
        #expect(rounded.wasRounded)
        #expect(try AlarisRate(roundingDown: .millilitresPerHour(0.009)).text == "0.00")
        #expect(try AlarisRate(roundingDown: .millilitresPerHour(1200)).text == "1200.00")
        #expect(try AlarisRate(roundingDown: VolumeRate(1, .millilitresPerMinute)).text == "60.00")
        #expect(try !AlarisRate(roundingDown: .millilitresPerHour(0.29)).rounded.wasRounded)
        #expect(throws: AlarisMessageError.self) { try AlarisRate(roundingDown: .millilitresPerHour(-0.1)) }
        #expect(throws: AlarisMessageError.self) { try AlarisRate(roundingDown: .millilitresPerHour(.nan)) }
        #expect(throws: AlarisMessageError.self) { try AlarisRate(roundingDown: .millilitresPerHour(.infinity)) }
        #expect(throws: AlarisMessageError.self) { try AlarisRate(roundingDown: .millilitresPerHour(100_000)) }
    }

    @Test("Property: rate encoding never rounds up and re-parses to what it sends")
    func rateProperty() async {
        await propertyCheck(count: 500, input: Gen.int(in: 0...120_000_000)) { micro in
            // micro = µL/h·10, so rates 0...12000 mL/h with 4 decimals
            let requested = VolumeRate(exactCanonicalValue: Decimal(micro) / 10_000)
            guard let rate = try? AlarisRate(roundingDown: requested) else {
                Issue.record("rate \(requested) did not encode")
                return
            }
            #expect(rate.value <= requested)
            #expect((requested - rate.value).millilitresPerHour < 0.01 + 1e-9)
            // What a simulator parses back is exactly the rate sent (its own `requested` is the sent value).
            let parsed = try AlarisCommand(message: rate.command.message)
            #expect(parsed.message == rate.command.message)
            guard case let .setRate(back) = parsed else {
                Issue.record("INF_RATE^\(rate.text)^ml/h parsed as \(parsed)")
                return
            }
            #expect(back.value == rate.value)
            #expect(!back.rounded.wasRounded)
        }
    }

    // MARK: Round trips

    static let sampleCommands: [AlarisCommand] = {
        let code = AlarisRemoteCode(serialNumber: "8002-51740")
        var commands: [AlarisCommand] = [
            .querySerialNumber, .queryCommsProtocol, .queryResponseTimeMaximum, .queryInfusionStatus,
            .enableRemoteControl(code), .disableRemoteControl, .enableRemoteConfiguration(code),
            .disableRemoteConfiguration, .queryRate, .queryVolumeInfused, .start, .stop, .queryVTBI,
            .deactivateVTBI, .enableBolus, .deactivateRemoteQuery,
        ]
        if let rate = try? AlarisRate(roundingDown: .millilitresPerHour(28.75)) { commands.append(.setRate(rate)) }
        if let volume = try? AlarisVolume(roundingDown: .millilitres(49.5)) { commands.append(.activateVTBI(volume, then: .stop)) }
        if let message = try? AlarisMessage(keyword: "SYRINGE_STATUS") { commands.append(.unrecognized(message)) }
        return commands
    }()

    static let sampleReplies: [AlarisReply] = [
        .serialNumber("8002-51740"), .commsProtocol("Asena Rev 2.1.5"),
        .remoteControl(AlarisRemoteState(enabled: true, detail: ["****", "PERMIT", "0", "ms"])),
        .remoteConfiguration(AlarisRemoteState(enabled: false)),
        .rate(.millilitresPerHour(12.5)), .volumeInfused(.millilitres(3.217)), .started, .stopped,
        .vtbi(AlarisVTBIStatus(active: true, volume: .millilitres(20), endAction: .stop)),
        .vtbi(AlarisVTBIStatus(active: false)), .bolusEnabled, .remoteQueryDeactivated,
    ]

    @Test("Every command survives encode → stream decode → typed decode")
    func commandRoundTrip() throws {
        for command in Self.sampleCommands {
            var decoder = AlarisFrameDecoder()
            let events = decoder.decode(command.frame)
            #expect(events == [.message(command.message)])
            #expect(try AlarisCommand(message: command.message) == command)
        }
    }

    @Test("Every reply survives encode → stream decode → typed decode")
    func replyRoundTrip() throws {
        for reply in Self.sampleReplies {
            var decoder = AlarisFrameDecoder()
            let events = decoder.decode(try reply.frame())
            #expect(events == [.message(try reply.message())])
            #expect(try AlarisReply(message: reply.message()) == reply)
        }
    }

    @Test("Property: serial numbers round-trip through the INST_SERIALNO reply and give a stable code")
    func serialProperty() async {
        let alphabet = Array("0123456789-ABCDEFXYZ")
        let serial = Gen.int(in: 0...(alphabet.count - 1)).map { alphabet[$0] }.string(of: 1...20)
        await propertyCheck(count: 300, input: serial) { serial in
            let frame = try AlarisReply.serialNumber(serial).frame()
            var decoder = AlarisFrameDecoder()
            let events = decoder.decode(frame)
            guard case let .message(message)? = events.first, events.count == 1 else {
                Issue.record("serial \(serial) did not decode: \(events)")
                return
            }
            let reply = try AlarisReply(message: message)
            #expect(reply == .serialNumber(serial))
            let code = AlarisRemoteCode(serialNumber: serial)
            #expect(code.value == Checksums.crc16CCITTFalse(Array(serial.utf8)))
            #expect(AlarisRemoteCode(text: code.text) == code)
        }
    }

    // MARK: Stream decoder behaviour

    @Test("CRC mismatch is a typed, counted error event; the next frame still decodes")
    func checksumMismatch() {
        var decoder = AlarisFrameDecoder()
        let events = decoder.decode(ascii("!INF_STOP|CD58\r!INF_START|38F3\r"))
        #expect(events == [
            .error(.checksumMismatch(message: "INF_STOP", received: 0xCD58, computed: 0xCD57)),
            .message(AlarisCommand.start.message),
        ])
        #expect(decoder.statistics.checksumMismatches == 1)
        #expect(decoder.statistics.messages == 1)
    }

    @Test("ESC aborts a partial frame; garbage between frames is skipped; lower-case CRC digits accepted")
    func escapeAndGarbage() {
        var decoder = AlarisFrameDecoder()
        let events = decoder.decode(ascii("xx\n!INF_ST") + [0x1B] + ascii("junk\r\n!inf") + ascii("!INF|4961\r\n!INF_STOP|cd57\r"))
        #expect(events == [
            .error(.abortedByEscape(discardedBytes: 6)),
            .error(.interruptedByNewFrame(discardedBytes: 3)),
            .message(AlarisCommand.queryInfusionStatus.message),
            .message(AlarisCommand.stop.message),
        ])
        #expect(decoder.statistics.escapeAborts == 1)
        #expect(decoder.statistics.interruptedFrames == 1)
        #expect(decoder.statistics.bytesSkipped == ascii("xx\njunk\r\n\n").count)
    }

    @Test("Malformed frames: no bar, short CRC, empty keyword")
    func malformedFrames() {
        var decoder = AlarisFrameDecoder()
        let events = decoder.decode(ascii("!INF\r!INF|49\r!|FFFF\r"))
        #expect(events == [
            .error(.missingChecksum(text: "INF")),
            .error(.malformedChecksum(text: "49")),
            .error(.invalidMessage(.emptyKeyword)),
        ])
        #expect(decoder.statistics.malformedFrames == 3)
        #expect(throws: AlarisFrameError.missingStart) { try AlarisFrame.decode(ascii("INF|4961\r")) }
    }

    @Test("Over-long frames are dropped at the bound and the decoder recovers")
    func oversizeFrame() {
        var decoder = AlarisFrameDecoder(maximumFrameLength: 32)
        var stream = ascii("!") + [UInt8](repeating: 0x41, count: 1000)
        stream += ascii("\r!INF_START|38F3\r")
        var maxBuffered = 0
        var events: [AlarisFrameEvent] = []
        for byte in stream {
            decoder.feed([byte]) { events.append($0) }
            maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
        }
        #expect(maxBuffered <= 32)
        #expect(events == [.error(.frameTooLong(limit: 32)), .message(AlarisCommand.start.message)])
        #expect(decoder.statistics.oversizedFrames == 1)
    }

    @Test("Every truncation of a frame yields no message, and the next frame still decodes")
    func truncatedFrames() {
        for command in Self.sampleCommands {
            let frame = command.frame
            for cut in 0..<frame.count {
                var decoder = AlarisFrameDecoder()
                let partial = decoder.decode(frame[..<cut])
                #expect(!partial.contains { if case .message = $0 { return true } else { return false } })
                let rest = decoder.decode(AlarisCommand.stop.frame)
                #expect(rest.last == .message(AlarisCommand.stop.message), "cut \(cut) of \(command)")
            }
        }
    }

    @Test("Robustness: 5000 random chunks of noise, truncations and corrupt frames never wedge the decoder")
    func randomStreams() throws {
        var rng = ClinicalStreamRNG(seed: 0xA1A215)
        let frames = try Self.sampleCommands.map(\.frame) + Self.sampleReplies.map { try $0.frame() }
        var stream: [UInt8] = []
        var expected: [AlarisMessage] = []
        var corrupted = 0
        while stream.count < 120_000 {
            switch rng.int(in: 0...5) {
            case 0, 1:
                let frame = rng.element(of: frames)
                stream += frame
                expected.append(try AlarisFrame.decode(frame))
            case 2:
                stream += rng.noise(count: rng.int(in: 1...60), specials: [0x21, 0x0D, 0x1B, 0x7C, 0x5E, 0x0A])
            case 3:
                let frame = rng.element(of: frames)
                stream += frame[..<rng.int(in: 1...(frame.count - 1))]
            case 4:
                // Corrupt one message byte (stays printable, never a framing byte): a CRC mismatch.
                var frame = rng.element(of: frames)
                let index = rng.int(in: 1...(frame.count - 7))
                frame[index] = frame[index] == 0x41 ? 0x42 : 0x41
                stream += frame
                corrupted += 1
            default:
                stream += ascii("!") + [UInt8](repeating: 0x5A, count: rng.int(in: 400...700))
            }
        }
        var decoder = AlarisFrameDecoder()
        var messages: [AlarisMessage] = []
        var mismatches = 0
        var maxBuffered = 0
        var chunkCount = 0
        for chunk in rng.chunks(stream, maximum: 48) {
            chunkCount += 1
            decoder.feed(chunk) { event in
                switch event {
                case let .message(message): messages.append(message)
                case .error(.checksumMismatch): mismatches += 1
                case .error: break
                }
            }
            maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
        }
        #expect(chunkCount > 4000)
        #expect(maxBuffered <= decoder.maximumFrameLength)
        #expect(isOrderedSubsequence(expected, of: messages))
        #expect(messages.count - expected.count <= 2)  // noise could forge a frame only by 1-in-65536 luck
        #expect(mismatches >= corrupted)
        #expect(decoder.statistics.checksumMismatches == mismatches)
        // After everything, a clean frame still decodes.
        #expect(decoder.decode(ascii("\r!INF|4961\r")).last == .message(AlarisCommand.queryInfusionStatus.message))
    }

    @Test("Property: splitting a valid stream at arbitrary points does not change what is decoded")
    func chunkingInvariance() async {
        let stream = Self.sampleCommands.flatMap(\.frame)
        var reference = AlarisFrameDecoder()
        let expected = reference.decode(stream)
        await propertyCheck(count: 200, input: Gen.int(in: 1...40).array(of: 1...200)) { sizes in
            var decoder = AlarisFrameDecoder()
            var events: [AlarisFrameEvent] = []
            var index = 0
            var sizeIndex = 0
            while index < stream.count {
                let size = min(sizes[sizeIndex % sizes.count], stream.count - index)
                decoder.feed(stream[index..<(index + size)]) { events.append($0) }
                index += size
                sizeIndex += 1
            }
            #expect(events == expected)
        }
    }
}

extension AlarisRate {
    /// The set-rate command for this rate (test convenience).
    var command: AlarisCommand { .setRate(self) }
}
