import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

/// The two example lines of reference/protocols.md §B3, verbatim.
@Suite("Masimo golden vectors")
struct MasimoGoldenTests {
    static let radical7 = "MM/DD/YY HH:MM:SS SN=0123456789 SPO2=098% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=027 ALARM=0000 EXC=000800"
    static let radical5 = "09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800"

    @Test("Radical-7 example line: every field by tag, dashes are nil, and it encodes back verbatim")
    func radical7Line() throws {
        let record = try Masimo.Record(parsing: Self.radical7)
        #expect(record.deviceTime.text == "MM/DD/YY HH:MM:SS")
        #expect(record.deviceTime.components == nil)  // the reference shows the format, not a time
        #expect(record.serialNumber == "0123456789")
        #expect(record.spo2 == .percent(98))
        #expect(record.pulseRate == .beatsPerMinute(72))
        #expect(record.perfusionIndex == .percent(3.6))
        #expect(record.spco == nil)
        #expect(record.spmet == nil)
        #expect(record.desat == nil)
        #expect(record.piDelta == nil)
        #expect(record.pvi == 27)
        #expect(record.alarms == [])
        #expect(record.exceptions == .masimoSET)
        #expect(record.exceptions?.problems == [])
        #expect(record.tags == Masimo.Record.radical7Tags)
        #expect(record.line(style: .radical7) == Self.radical7)

        var decoder = Masimo.StreamDecoder()
        let results = decoder.decode(Array((Self.radical7 + "\r\n").utf8))
        #expect(try results.first?.get() == record)
    }

    @Test("Radical-5 example line: no SN, PVI or SpCO; short hex; encodes back verbatim")
    func radical5Line() throws {
        let record = try Masimo.Record(parsing: Self.radical5)
        let time = try #require(record.deviceTime.components)
        #expect(time.month == 9 && time.day == 15 && time.year == 10)
        #expect(time.hour == 15 && time.minute == 10 && time.second == 29)
        #expect(record.serialNumber == nil)
        #expect(record.spo2 == .percent(97))
        #expect(record.pulseRate == .beatsPerMinute(64))
        #expect(record.perfusionIndex == .percent(11.82))
        #expect(record.pvi == nil && record.spco == nil && record.spmet == nil)
        #expect(record.alarms == .alarmSilenced)
        #expect(record.exceptions == .masimoSET)
        #expect(record.tags == Masimo.Record.radical5Tags)
        #expect(record.line(style: .radical5) == Self.radical5)
        #expect(record.encoded(style: .radical5) == Array((Self.radical5 + "\r\n").utf8))
    }

    @Test("fields are found by tag, not position")
    func byTag() throws {
        let shuffled = try Masimo.Record(parsing: "01/02/03 04:05:06 BPM=061 EXC=000004 SPO2=091% ALARM=0012 FOO=bar")
        #expect(shuffled.spo2 == .percent(91))
        #expect(shuffled.pulseRate == .beatsPerMinute(61))
        #expect(shuffled.alarms == [.spo2Low, .alarmActive])
        #expect(shuffled.exceptions == .lowPerfusion)
        #expect(shuffled.exceptions?.problems == .lowPerfusion)
        #expect(shuffled.unknownFields == [Masimo.UnknownField(tag: "FOO", value: "bar")])
        #expect(shuffled.line(style: .radical7) == "01/02/03 04:05:06 BPM=061 EXC=000004 SPO2=091% ALARM=0012 FOO=bar")
        // Missing values in every shape the reference names.
        let missing = try Masimo.Record(parsing: "01/02/03 04:05:06 SPO2=---% BPM=--- PI=--.--% PIDELTA=+-- DESAT=--")
        #expect(missing.spo2 == nil && missing.pulseRate == nil && missing.perfusionIndex == nil)
        #expect(missing.alarms == nil && missing.exceptions == nil)  // absent, not "no alarm"
        let signed = try Masimo.Record(parsing: "01/02/03 04:05:06 SPO2=099% BPM=100 PIDELTA=-05 DESAT=03 SPCO=01.5% SPMET=00.8%")
        #expect(signed.piDelta == -5 && signed.desat == 3)
        #expect(signed.spco == .percent(1.5) && signed.spmet == .percent(0.8))
    }

    @Test("every listed ALARM and EXC bit")
    func flags() {
        #expect(Masimo.AlarmFlags.listed.map(\.flag.rawValue) == [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x100, 0x200, 0x400, 0x800, 0x1000, 0x2000])
        #expect(Masimo.ExceptionFlags.listed.map(\.flag.rawValue) == [
            0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100, 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000,
            0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
        ])
        #expect(Masimo.AlarmFlags(rawValue: 0x2041).description == "[SpO2 high, low battery, PI delta]")
        #expect(Masimo.ExceptionFlags(rawValue: 0x800200).description == "[unknown bits 0x800200]")
    }

    @Test("malformed lines are errors that say what was wrong")
    func errors() {
        let bad = [
            "", "garbage", "01/02/03 04:05:06", "SPO2=098% BPM=072",
            "01/02/03 04:05:06 BPM=072", "01/02/03 04:05:06 SPO2=098%",        // SPO2 and BPM are required
            "01/02/03 04:05:06 SPO2=098 BPM=072",                               // % missing
            "01/02/03 04:05:06 SPO2=9x8% BPM=072", "01/02/03 04:05:06 SPO2=101% BPM=072",
            "01/02/03 04:05:06 SPO2=098% BPM=072 SPO2=097%",                    // repeated tag
            "01/02/03 04:05:06 SPO2=098% BPM=072 ALARM=XYZ",
            "01/02/03 04:05:06 SPO2=098% BPM=072 stray",
            "0102/03 04:05:06 SPO2=098% BPM=072",
            "01/02/03 04:05:06 SPO2=098% BPM=072 PI=3.605%",
        ]
        for line in bad {
            #expect(throws: Masimo.ParseError.self, "\(line)") { try Masimo.Record(parsing: line) }
        }
        do {
            _ = try Masimo.Record(parsing: "01/02/03 04:05:06 SPO2=9x8% BPM=072")
        } catch {
            #expect(error.description.contains("SPO2=9x8%"))
        }
    }

    @Test("a line cut short at its start still decodes from its date onward")
    func leadingGarbage() throws {
        let record = try Masimo.Record(parsing: "#%!09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800")
        #expect(record == (try Masimo.Record(parsing: MasimoGoldenTests.radical5)))
        let spaced = try Masimo.Record(parsing: "X5% BPM 09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800")
        #expect(spaced.pulseRate == .beatsPerMinute(64))
    }
}

enum MasimoSamples {
    static func record<R: RandomNumberGenerator>(_ rng: inout R) -> Masimo.Record {
        func maybe<T>(_ value: T) -> T? { Int.random(in: 0..<4, using: &rng) == 0 ? nil : value }
        let time = Masimo.DeviceTime(month: Int.random(in: 1...12, using: &rng), day: Int.random(in: 1...31, using: &rng),
                                     year: Int.random(in: 0...99, using: &rng), hour: Int.random(in: 0...23, using: &rng),
                                     minute: Int.random(in: 0...59, using: &rng), second: Int.random(in: 0...59, using: &rng))
        var tags = Masimo.Tag.allCases.filter { tag in tag == .spo2 || tag == .pulseRate || Bool.random(using: &rng) }
        if Bool.random(using: &rng) { tags.shuffle(using: &rng) }
        let serial = String((0..<10).map { _ in "0123456789ABCDEF".randomElement(using: &rng) ?? "0" })
        return Masimo.Record(
            deviceTime: time,
            serialNumber: tags.contains(.serialNumber) ? serial : nil,
            spo2: maybe(.percent(Double(Int.random(in: 0...100, using: &rng)))),
            pulseRate: maybe(.beatsPerMinute(Double(Int.random(in: 0...300, using: &rng)))),
            perfusionIndex: tags.contains(.perfusionIndex) ? maybe(.percent(Double(Int.random(in: 0...2000, using: &rng)) / 100)) : nil,
            spco: tags.contains(.spco) ? maybe(.percent(Double(Int.random(in: 0...999, using: &rng)) / 10)) : nil,
            spmet: tags.contains(.spmet) ? maybe(.percent(Double(Int.random(in: 0...999, using: &rng)) / 10)) : nil,
            desat: tags.contains(.desat) ? maybe(Int.random(in: 0...99, using: &rng)) : nil,
            piDelta: tags.contains(.piDelta) ? maybe(Int.random(in: -99...99, using: &rng)) : nil,
            pvi: tags.contains(.pvi) ? maybe(Int.random(in: 0...100, using: &rng)) : nil,
            alarms: tags.contains(.alarm) ? Masimo.AlarmFlags(rawValue: UInt32.random(in: 0...0x3FFF, using: &rng)) : nil,
            exceptions: tags.contains(.exceptions) ? Masimo.ExceptionFlags(rawValue: UInt32.random(in: 0...0x7FFFFF, using: &rng)) : nil,
            tags: tags)
    }
}

@Suite("Masimo round trips and robustness")
struct MasimoStreamTests {
    @Test("property: any record → line (either style) → chunked stream → the same record")
    func roundTrip() async {
        await propertyCheck(count: 500, input: Gen.uint64(), Gen.int(in: 1...50)) { seed, maxChunk in
            var rng = seededRNG(seed)
            let records = (0..<4).map { _ in MasimoSamples.record(&rng) }
            let style: Masimo.LineStyle = Bool.random(using: &rng) ? .radical7 : .radical5
            var decoder = Masimo.StreamDecoder()
            var decoded: [Masimo.Record] = []
            for chunk in randomChunks(records.flatMap { $0.encoded(style: style) }, maxChunk: maxChunk, using: &rng) {
                decoder.push(contentsOf: chunk) { result in
                    switch result {
                    case .success(let record): decoded.append(record)
                    case .failure(let error): Issue.record("\(error)")
                    }
                }
            }
            #expect(decoded == records)
        }
    }

    @Test("10 000 bursts of garbage: bounded, over-long lines counted, and the next full line always decodes")
    func resynchronises() throws {
        var rng = seededRNG(0x3A5)
        var decoder = Masimo.StreamDecoder(maxLineLength: 200)
        var maxBuffered = 0
        for round in 0..<10_000 {
            let record = MasimoSamples.record(&rng)
            var junk = rng.bytes(Int.random(in: 0...(round % 10 == 0 ? 600 : 80), using: &rng))
            if Bool.random(using: &rng) {
                let line = record.encoded(style: .radical7)
                junk += line.prefix(Int.random(in: 0..<line.count, using: &rng))  // a truncated line
            }
            var last: Result<Masimo.Record, Masimo.ParseError>?
            for chunk in randomChunks(junk + [0x0D, 0x0A] + record.encoded(style: .radical7), maxChunk: 64, using: &rng) {
                decoder.push(contentsOf: chunk) { last = $0 }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            #expect(try last?.get() == record)
        }
        #expect(maxBuffered <= 200)
        #expect(decoder.overlongLines > 0)
        #expect(decoder.parseErrors > 0)
        #expect(decoder.recordsDecoded >= 10_000)
    }

    @Test("a stream with no line ends at all stays bounded")
    func noTerminators() {
        var splitter = Masimo.LineSplitter(maxLineLength: 64)
        var rng = seededRNG(99)
        for _ in 0..<1000 {
            let bytes = rng.bytes(100).map { $0 == 0x0D || $0 == 0x0A ? 0x20 : $0 }
            #expect(splitter.decode(bytes).isEmpty)
            #expect(splitter.bufferedByteCount <= 64)
        }
        #expect(splitter.decode([0x0D]).isEmpty)  // the over-long line is dropped, not returned
        #expect(splitter.overlongLines == 1)
        #expect(splitter.decode(Array("ok\r\n".utf8)) == ["ok"])
    }
}
