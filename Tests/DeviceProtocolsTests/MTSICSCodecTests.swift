import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

@Suite("Mettler Toledo MT-SICS codec")
struct MTSICSCodecTests {
    // MARK: Golden vectors (§A7)

    @Test("Command encoders: I1...I5, S, SI, Z, ZI, @ each end in CR LF")
    func commandBytes() {
        let expected: [(MTSICSCommand, String)] = [
            (.level, "I1\r\n"), (.balanceData, "I2\r\n"), (.softwareVersion, "I3\r\n"), (.serialNumber, "I4\r\n"),
            (.softwareIdentification, "I5\r\n"), (.weighStable, "S\r\n"), (.weighImmediately, "SI\r\n"),
            (.zero, "Z\r\n"), (.zeroImmediately, "ZI\r\n"), (.reset, "@\r\n"),
        ]
        #expect(expected.count == MTSICSCommand.allCases.count)
        for (command, text) in expected {
            #expect(command.bytes == ascii(text))
            #expect(MTSICSCommand(line: String(text.dropLast())) == command)  // "\r\n" is one Character
        }
        #expect(MTSICSCommand(line: " SI ") == .weighImmediately)
        #expect(MTSICSCommand(line: "XYZ") == nil)  // a balance answers ES
    }

    @Test("Golden: S S     100.00 g is a stable 100.00 g, and the formatter reproduces it exactly")
    func stableWeightGolden() throws {
        let response = try MTSICSResponse(line: "S S     100.00 g")
        let expected = MTSICSWeight(value: 100, unit: "g", fractionDigits: 2, stability: .stable)
        #expect(response == .weight(expected))
        #expect(MTSICSResponse.weight(expected).line == "S S     100.00 g")
        #expect(MTSICSResponse.weight(expected).bytes == ascii("S S     100.00 g\r\n"))
        guard case let .weight(weight) = response else { return }
        #expect(weight.grams == 100)
        #expect(weight.mass == Mass(100, .grams))
        #expect(weight.isStable)
    }

    @Test("Weight responses: dynamic, negative, other units")
    func weightVariants() throws {
        #expect(try MTSICSResponse(line: "S D      12.3456 g")
            == .weight(MTSICSWeight(value: 12.3456, unit: "g", fractionDigits: 4, stability: .dynamic)))
        let negative = try MTSICSResponse(line: "S S      -0.02 g")
        #expect(negative == .weight(MTSICSWeight(value: -0.02, unit: "g", fractionDigits: 2)))
        #expect(MTSICSResponse.weight(MTSICSWeight(value: -0.02, unit: "g", fractionDigits: 2)).line == "S S      -0.02 g")
        guard case let .weight(kilo) = try MTSICSResponse(line: "S S   1.2345 kg") else {
            Issue.record("kg weight did not parse")
            return
        }
        #expect(kilo.grams == 1234.5)
        #expect(kilo.unit == "kg")
        guard case let .weight(milli) = try MTSICSResponse(line: "S S 250.0 mg") else {
            Issue.record("mg weight did not parse")
            return
        }
        #expect(milli.grams == 0.25)
        guard case let .weight(custom) = try MTSICSResponse(line: "S S 3.5 ct") else {
            Issue.record("ct weight did not parse")
            return
        }
        #expect(custom.grams == nil)
        #expect(custom.unit == "ct")
        #expect(try MTSICSResponse(line: "S S     100.00 g\r") == .weight(MTSICSWeight(value: 100)))
    }

    @Test("Status responses: S I, S +, S -, Z A, Z I, Z +, Z -, ZI D, ES, ET, EL")
    func statusResponses() throws {
        let expected: [(String, MTSICSResponse)] = [
            ("S I", .weightNotExecutable), ("S +", .weightOverload), ("S -", .weightUnderload),
            ("Z A", .zero(immediate: false, .done)), ("Z I", .zero(immediate: false, .notExecutable)),
            ("Z +", .zero(immediate: false, .aboveRange)), ("Z -", .zero(immediate: false, .belowRange)),
            ("ZI D", .zero(immediate: true, .doneWhileDynamic)), ("ZI S", .zero(immediate: true, .doneWhileStable)),
            ("ZI I", .zero(immediate: true, .notExecutable)),
            ("ES", .syntaxError), ("ET", .transmissionError), ("EL", .logicalError),
            ("I4 I", .informationNotExecutable(.serialNumber)),
        ]
        for (line, response) in expected {
            #expect(try MTSICSResponse(line: line) == response)
            #expect(response.line == line)
        }
    }

    @Test("Identification: I4 A \"<serial>\" (also the @ reply) and quoted I2 data")
    func identification() throws {
        #expect(try MTSICSResponse(line: "I4 A \"B123456789\"") == .serialNumber("B123456789"))
        #expect(MTSICSResponse.serialNumber("B123456789").line == "I4 A \"B123456789\"")
        let data = try MTSICSResponse(line: "I2 A \"XS204 Excellence\" \"220.0000 g\"")
        #expect(data == .information(.balanceData, ["XS204 Excellence", "220.0000 g"]))
        #expect(data.line == "I2 A \"XS204 Excellence\" \"220.0000 g\"")
        #expect(try MTSICSResponse(line: "I1 A \"0123\" \"2.00\"") == .information(.level, ["0123", "2.00"]))
    }

    @Test("Malformed lines are typed errors")
    func malformedLines() {
        #expect(throws: MTSICSParseError.empty) { try MTSICSResponse(line: "") }
        #expect(throws: MTSICSParseError.badWeight(line: "S S abc g")) { try MTSICSResponse(line: "S S abc g") }
        #expect(throws: MTSICSParseError.badWeight(line: "S S 100.00")) { try MTSICSResponse(line: "S S 100.00") }
        #expect(throws: MTSICSParseError.badWeight(line: "S S 1.2.3 g")) { try MTSICSResponse(line: "S S 1.2.3 g") }
        #expect(throws: MTSICSParseError.unterminatedQuote(line: "I4 A \"B12")) { try MTSICSResponse(line: "I4 A \"B12") }
        #expect(throws: MTSICSParseError.unrecognized(line: "Q Q")) { try MTSICSResponse(line: "Q Q") }
        #expect(throws: MTSICSParseError.unrecognized(line: "Z Q")) { try MTSICSResponse(line: "Z Q") }
    }

    @Test("Property: formatted weights parse back to the same value, unit, decimals and stability")
    func weightRoundTripProperty() async {
        await propertyCheck(count: 500, input: Gen.int(in: -999_999...9_999_999), Gen.int(in: 0...4), Gen.bool) { units, digits, stable in
            var scale = 1.0
            for _ in 0..<digits { scale *= 10 }
            let weight = MTSICSWeight(value: Double(units) / scale, unit: "g", fractionDigits: digits,
                                      stability: stable ? .stable : .dynamic)
            let line = MTSICSResponse.weight(weight).line
            #expect(line.hasPrefix(stable ? "S S " : "S D "))
            if weight.valueText.count <= MTSICSResponse.weightFieldWidth {
                #expect(line.count == 4 + MTSICSResponse.weightFieldWidth + 2)  // "S S " + field + " g"
            }
            let parsed = try MTSICSResponse(line: line)
            #expect(parsed == .weight(weight))
        }
    }

    // MARK: Line splitter

    @Test("Line splitter: CR LF, lone CR or LF, chunked input, empty lines skipped")
    func lineSplitting() {
        var splitter = MTSICSLineSplitter()
        var events = splitter.split(ascii("S S     100.00 g\r\nZ A\r"))
        events += splitter.split(ascii("\nES\n\r\n\r\nI4 A \"12"))
        events += splitter.split(ascii("34\"\r\n"))
        #expect(events == [.line("S S     100.00 g"), .line("Z A"), .line("ES"), .line("I4 A \"1234\"")])
        #expect(splitter.lines == 4)
        #expect(splitter.bufferedByteCount == 0)
    }

    @Test("Over-long lines are reported once and dropped; the next line is intact")
    func overlongLine() {
        var splitter = MTSICSLineSplitter(maximumLineLength: 32)
        var maxBuffered = 0
        var events: [MTSICSLineEvent] = []
        for byte in [UInt8](repeating: 0x58, count: 5000) + ascii("\r\nS S      1.00 g\r\n") {
            splitter.feed([byte]) { events.append($0) }
            maxBuffered = max(maxBuffered, splitter.bufferedByteCount)
        }
        #expect(maxBuffered <= 32)
        #expect(events == [.lineTooLong(limit: 32), .line("S S      1.00 g")])
        #expect(splitter.overlongLines == 1)
    }

    @Test("Robustness: 5000 random chunks of noise and truncated lines never wedge the splitter")
    func randomStreams() throws {
        var rng = ClinicalStreamRNG(seed: 0x5C15)
        let responses: [MTSICSResponse] = [
            .weight(MTSICSWeight(value: 100)), .weight(MTSICSWeight(value: 0.1234, fractionDigits: 4, stability: .dynamic)),
            .weightNotExecutable, .zero(immediate: false, .done), .serialNumber("B123456789"), .syntaxError,
        ]
        var stream: [UInt8] = []
        var expected: [MTSICSResponse] = []
        while stream.count < 100_000 {
            switch rng.int(in: 0...3) {
            case 0, 1:
                // A line starts cleanly only after a terminator.
                let response = rng.element(of: responses)
                stream += ascii("\r\n") + response.bytes
                expected.append(response)
            case 2:
                stream += rng.noise(count: rng.int(in: 1...80), specials: [0x0D, 0x0A, 0x22, 0x20, 0x53])
            default:
                let bytes = rng.element(of: responses).bytes
                stream += bytes[..<rng.int(in: 1...(bytes.count - 2))]
                if rng.chance(0.2) { stream += [UInt8](repeating: 0x41, count: 400) }
            }
        }
        var splitter = MTSICSLineSplitter()
        var parsed: [MTSICSResponse] = []
        var maxBuffered = 0
        var chunkCount = 0
        for chunk in rng.chunks(stream, maximum: 40) {
            chunkCount += 1
            splitter.feed(chunk) { event in
                if case let .line(line) = event, let response = try? MTSICSResponse(line: line) {
                    parsed.append(response)
                }
            }
            maxBuffered = max(maxBuffered, splitter.bufferedByteCount)
        }
        #expect(chunkCount > 4000)
        #expect(maxBuffered <= splitter.maximumLineLength)
        #expect(isOrderedSubsequence(expected, of: parsed))
        #expect(splitter.overlongLines > 0)
        #expect(splitter.split(ascii("\r\nS S     100.00 g\r\n")).last == .line("S S     100.00 g"))
    }
}
