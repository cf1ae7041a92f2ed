import InfusionCore
import Testing
@testable import DeviceProtocols

/// Every vector in reference/protocols.md §A1, byte for byte, in both directions.
@Suite("New Era golden vectors")
struct NewEraGoldenTests {
    struct CommandVector: Sendable, CustomTestStringConvertible {
        let packet: NewEra.CommandPacket
        let text: String
        let wire: String
        var testDescription: String { text }
    }

    static let commandVectors: [CommandVector] = [
        .init(packet: .init(.unaddressed, .setSafeMode(timeoutSeconds: 0)), text: "SAF0", wire: "02 08 53 41 46 30 55 43 03"),
        .init(packet: .init(address: .zero, .setSafeMode(timeoutSeconds: 10)), text: "0SAF10", wire: "02 0a 30 53 41 46 31 30 63 be 03"),
        .init(packet: .init(address: .zero, .run(phase: nil)), text: "0RUN", wire: "02 08 30 52 55 4e 44 07 03"),
        .init(packet: .init(address: .zero, .stop), text: "0STP", wire: "02 08 30 53 54 50 b3 f9 03"),
        .init(packet: .init(address: .zero, nil), text: "0", wire: "02 05 30 36 53 03"),
        .init(packet: .init(address: .zero, .queryVersion), text: "0VER", wire: "02 08 30 56 45 52 48 09 03"),
    ]

    @Test("safe-mode command packets encode to the manual's bytes", arguments: commandVectors)
    func safeCommandEncoding(vector: CommandVector) throws {
        #expect(vector.packet.text == vector.text)
        #expect(try NewEra.Framing.safePacket(vector.packet) == hexBytes(vector.wire))
        #expect(try NewEra.Framing.encode(vector.packet, mode: .safe) == hexBytes(vector.wire))
    }

    @Test("safe-mode command packets decode to the typed command", arguments: commandVectors)
    func safeCommandDecoding(vector: CommandVector) throws {
        var decoder = NewEra.CommandDecoder()
        let events = decoder.decode(hexBytes(vector.wire), at: .origin)
        #expect(events.count == 1)
        let received = try #require(try events.first?.get())
        #expect(received == NewEra.Received(vector.packet, framing: .safe))
        #expect(decoder.statistics.packetsDecoded == 1)
        #expect(decoder.statistics.checksumErrors == 0)
    }

    @Test("safe-mode replies: 00S and 00A?R")
    func safeReplies() throws {
        let stopped = NewEra.Reply(address: .zero, status: .prompt(.stopped))
        let reset = NewEra.Reply(address: .zero, status: .alarm(.reset))
        #expect(try NewEra.Framing.safePacket(stopped) == hexBytes("02 07 30 30 53 aa a6 03"))
        #expect(try NewEra.Framing.safePacket(reset) == hexBytes("02 09 30 30 41 3f 52 65 86 03"))

        var decoder = NewEra.ReplyDecoder()
        let events = decoder.decode(hexBytes("02 07 30 30 53 aa a6 03 02 09 30 30 41 3f 52 65 86 03"), at: .origin)
        #expect(events.count == 2)
        #expect(try events[0].get() == NewEra.Received(stopped, framing: .safe))
        #expect(try events[1].get() == NewEra.Received(reset, framing: .safe))
        #expect(try events[1].get().message.alarm == .reset)
    }

    @Test("basic mode: 0DIA\\r → 02 \"00S26.59\" 03")
    func basicDiameterExchange() throws {
        let query = NewEra.CommandPacket(address: .zero, .queryDiameter)
        #expect(NewEra.Framing.basicCommand(query) == ascii("0DIA\r"))

        let wire = [0x02] + ascii("00S26.59") + [0x03]
        let reply = NewEra.Reply(address: .zero, status: .prompt(.stopped), body: .data("26.59"))
        #expect(NewEra.Framing.basicReply(reply) == wire)

        var replies = NewEra.ReplyDecoder()
        let events = replies.decode(wire, at: .origin)
        let received = try #require(try events.first?.get())
        #expect(received.framing == .basic)
        #expect(received.message == reply)
        let diameter = try received.message.decode(NewEra.Number.self)
        #expect(diameter == NewEra.Number(scaledValue: 2659, fractionDigits: 2))
        #expect(diameter.value == 26.59)

        var commands = NewEra.CommandDecoder()
        let parsed = try #require(try commands.decode(ascii("0DIA\r"), at: .origin).first?.get())
        #expect(parsed == NewEra.Received(query, framing: .basic))
    }

    @Test("basic commands are cleaned like the pump does: spaces and control characters removed, upper-cased")
    func basicCleaning() throws {
        var decoder = NewEra.CommandDecoder()
        let events = decoder.decode(ascii("0 rat 1.5 mm\r") + ascii("\n 1\tdia\r") + ascii("\r"), at: .origin)
        #expect(events.count == 3)
        let rate = try NewEra.RateSetting(parsing: "1.5MM")
        #expect(try events[0].get().message == NewEra.CommandPacket(address: .zero, .setRate(rate)))
        #expect(try events[1].get().message == NewEra.CommandPacket(address: try #require(NewEra.Address(1)), .queryDiameter))
        // A bare CR (Enter in a terminal) is an unaddressed status query.
        #expect(try events[2].get().message == NewEra.CommandPacket(.unaddressed, nil))
    }

    @Test("reply grammar: every prompt, alarm and command error")
    func replyGrammar() throws {
        for prompt in NewEra.Prompt.allCases {
            let reply = try NewEra.Reply(parsing: "07" + prompt.rawValue)
            #expect(reply.status == .prompt(prompt))
            #expect(reply.address.value == 7)
            #expect(reply.body == .none)
        }
        for alarm in NewEra.Alarm.allCases {
            #expect(try NewEra.Reply(parsing: "00A?" + alarm.rawValue).alarm == alarm)
        }
        let errors: [(String, NewEra.CommandError)] = [
            ("?", .notRecognised), ("?NA", .notApplicable), ("?OOR", .outOfRange),
            ("?COM", .invalidPacket), ("?IGN", .ignored), ("?XYZ", .other("XYZ")),
        ]
        for (text, error) in errors {
            let reply = try NewEra.Reply(parsing: "00S" + text)
            #expect(reply.error == error)
            #expect(reply.text == "00S" + text)
        }
        #expect(try NewEra.Reply(parsing: "99I").address.value == 99)
        #expect(throws: NewEra.ParseError.self) { try NewEra.Reply(parsing: "0S") }
        #expect(throws: NewEra.ParseError.self) { try NewEra.Reply(parsing: "00Q") }
        #expect(throws: NewEra.ParseError.self) { try NewEra.Reply(parsing: "00A?Z") }
        #expect(throws: NewEra.ParseError.self) { try NewEra.Reply(parsing: "A0S") }
    }

    @Test("typed reply data: DIS, VER, RAT, VOL, DIA")
    func typedReplyData() throws {
        let dispensed = try NewEra.Dispensed(parsing: "I0.250W0.000ML")
        #expect(dispensed.infusedVolume == .millilitres(0.25))
        #expect(dispensed.withdrawnVolume == .millilitres(0))
        #expect(dispensed.unit == .millilitres)
        #expect(dispensed.replyText == "I0.250W0.000ML")
        let microlitres = try NewEra.Dispensed(parsing: "I12.50W3.000UL")
        #expect(microlitres.infusedVolume == Volume(12.5, .microlitres))

        let version = try NewEra.Version(parsing: "NE1000V3.928")
        #expect(version.model == 1000)
        #expect(!version.isUpgrade)
        #expect(version.major == 3)
        #expect(version.minor == "928")
        #expect(version.firmware == "3.928")
        let upgraded = try NewEra.Version(parsing: "NE500X2V1.05")
        #expect(upgraded.model == 500 && upgraded.isUpgrade && upgraded.upgradeNumber == 2 && upgraded.minor == "05")
        let bareX = try NewEra.Version(parsing: "NE4000XV2.1")
        #expect(bareX.isUpgrade && bareX.upgradeNumber == nil)
        #expect(bareX.replyText == "NE4000XV2.1")

        let rate = try NewEra.RateSetting(parsing: "1.500MM")
        #expect(rate.unit == .millilitresPerMinute)
        #expect(rate.number == NewEra.Number(scaledValue: 1500, fractionDigits: 3))
        #expect(rate.volumeRate == .millilitresPerHour(90))
        #expect(rate.replyText == "1.500MM")

        let volume = try NewEra.VolumeSetting(parsing: "5.000ML")
        #expect(volume.volume == .millilitres(5))
        #expect(NewEra.Number(text: "26.59")?.value == 26.59)

        // Through a reply, as a driver does it.
        let reply = try NewEra.Reply(parsing: "00SI0.250W0.000ML")
        #expect(try reply.decode(NewEra.Dispensed.self) == dispensed)
        #expect(try NewEra.Reply(parsing: "01INE1000V3.928").decode(NewEra.Version.self) == version)
        #expect(try NewEra.Reply(parsing: "00SWDR").decode(NewEra.Direction.self) == .withdraw)
        #expect(throws: NewEra.ParseError.self) { try NewEra.Reply(parsing: "00S?OOR").decode(NewEra.RateSetting.self) }
        #expect(throws: NewEra.ParseError.self) { try NewEra.Reply(parsing: "00S").decode(NewEra.Number.self) }
        #expect(throws: NewEra.ParseError.self) { try NewEra.Reply(parsing: "00S1.5XX").decode(NewEra.RateSetting.self) }

        for bad in ["", "I", "I0.250W0.000", "I0.250X0.000ML", "0.250W0.000ML", "I12345W0ML"] {
            #expect(throws: NewEra.ParseError.self) { try NewEra.Dispensed(parsing: bad) }
        }
        for bad in ["NE", "NEV3.9", "NE1000V3", "NE1000V.9", "NE1000V3.9Z", "XX1000V3.9"] {
            #expect(throws: NewEra.ParseError.self) { try NewEra.Version(parsing: bad) }
        }
        for bad in ["1.5", "MM", "1.5XX", "12345MM", "1.5555MH"] {
            #expect(throws: NewEra.ParseError.self) { try NewEra.RateSetting(parsing: bad) }
        }
    }

    @Test("every command encoder writes the manual's syntax")
    func commandEncoders() throws {
        let three = try #require(NewEra.Address(3))
        let cases: [(NewEra.Command, String)] = [
            (.queryDiameter, "DIA"), (.setDiameter(try #require(NewEra.Number(text: "26.59"))), "DIA26.59"),
            (.queryRate, "RAT"), (.setRate(try NewEra.RateSetting(parsing: "1.5MH")), "RAT1.5MH"),
            (.queryVolume, "VOL"), (.setVolume(try #require(NewEra.Number(text: "5"))), "VOL5"),
            (.setVolumeUnit(.microlitres), "VOLUL"), (.setVolumeUnit(.millilitres), "VOLML"),
            (.queryDirection, "DIR"), (.setDirection(.infuse), "DIRINF"), (.setDirection(.withdraw), "DIRWDR"),
            (.setDirection(.reverse), "DIRREV"), (.run(phase: nil), "RUN"), (.run(phase: 2), "RUN2"),
            (.purge, "PUR"), (.stop, "STP"), (.queryDispensed, "DIS"), (.clearDispensed(.infused), "CLDINF"),
            (.clearDispensed(.withdrawn), "CLDWDR"), (.queryVersion, "VER"), (.querySafeMode, "SAF"),
            (.setSafeMode(timeoutSeconds: 255), "SAF255"), (.setAddress(three), "ADR3"),
        ]
        for (command, text) in cases {
            #expect(command.text == text)
            #expect(NewEra.Command(parsing: text) == command, "\(text)")
        }
        #expect(NewEra.CommandPacket(.system, .run(phase: nil)).text == "*RUN")
        #expect(NewEra.CommandPacket(parsing: "*RUN") == NewEra.CommandPacket(.system, .run(phase: nil)))
        #expect(NewEra.CommandPacket(parsing: "12DIS") == NewEra.CommandPacket(.pump(try #require(NewEra.Address(12))), .queryDispensed))
        // Unknown names and bad arguments are kept for the simulator to refuse.
        #expect(NewEra.Command(parsing: "BUZ1") == .other(name: "BUZ", argument: "1"))
        #expect(NewEra.Command(parsing: "SAF256") == .other(name: "SAF", argument: "256"))
        #expect(NewEra.Command(parsing: "DIA12345") == .other(name: "DIA", argument: "12345"))
        #expect(NewEra.Address(100) == nil && NewEra.Address(-1) == nil)
    }

    @Test("numbers: the pump's 4-digit, 3-decimal grammar")
    func numbers() {
        #expect(NewEra.Number(text: "9999")?.value == 9999)
        #expect(NewEra.Number(text: "0.001")?.value == 0.001)
        #expect(NewEra.Number(text: ".5")?.value == 0.5)
        #expect(NewEra.Number(text: "1.500") == NewEra.Number(text: "1.5"))
        #expect(NewEra.Number(text: "1.500")?.text == "1.500")
        #expect(NewEra.Number(text: "1.5")?.fourDigitText == "1.500")
        #expect(NewEra.Number(text: "28")?.fourDigitText == "28.00")
        #expect(NewEra.Number(text: "0.25")?.fourDigitText == "0.250")
        // A 4-digit whole number keeps its decimal point (nesp-lib reads numbers as \d+\.\d*), and reads back.
        #expect(NewEra.Number(text: "9999")?.fourDigitText == "9999.")
        #expect(NewEra.Number(text: "1500")?.fourDigitText == "1500.")
        #expect(NewEra.Number(text: "1500.") == NewEra.Number(text: "1500"))
        let rate = NewEra.Number(1500).map { NewEra.RateSetting($0, .microlitresPerMinute) }
        #expect(rate?.replyText == "1500.UM")
        #expect(rate.flatMap { try? NewEra.RateSetting(parsing: $0.replyText) } == rate, "the driver reads it back")
        for bad in ["", ".", "10000", "1.2345", "12.345", "1..2", "-1", "1e3", " 1"] {
            #expect(NewEra.Number(text: bad) == nil, "\(bad)")
        }
        #expect(NewEra.Number.roundingDown(Double(12.3456)) == NewEra.Number(text: "12.34"))
        #expect(NewEra.Number.roundingDown(Double(0.0123456)) == NewEra.Number(text: "0.012"))
        #expect(NewEra.Number.roundingDown(Double(9999.9)) == NewEra.Number(text: "9999"))
        #expect(NewEra.Number.roundingDown(Double(10000)) == nil)
        #expect(NewEra.Number.roundingDown(Double(-1)) == nil)
    }
}
