import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

/// Vectors from reference/protocols.md §B4a (Contec V7.0).
@Suite("Contec golden vectors")
struct ContecGoldenTests {
    @Test("control commands: start real-time and keep-alive on the wire")
    func controlCommands() {
        #expect(Contec.ControlCommand.startRealTime.encoded() == hexBytes("7D 81 A1 80 80 80 80 80 80"))
        #expect(Contec.ControlCommand.keepAlive.encoded() == hexBytes("7D 81 AF 80 80 80 80 80 80"))
        var decoder = Contec.HostStreamDecoder()
        let messages = decoder.decode(hexBytes("7D 81 A1 80 80 80 80 80 80 7D 81 AF 80 80 80 80 80 80"))
        #expect(messages == [.control(.startRealTime), .control(.keepAlive)])
        #expect(Contec.ControlCommand.syncTime(hour: 14, minute: 30, second: 15).encoded() == hexBytes("7D 81 B1 8E 9E 8F 80 80 80"))
    }

    @Test("real-time packet: signal 5, beep, pleth 64, bar 7, PR 72, SpO2 98, PI 2.35 %")
    func realTimeExample() throws {
        let wire = hexBytes("01 A0 C5 C0 87 C8 E2 EB 80")
        let expected = Contec.RealTimeData(signalStrength: 5, pulseBeep: true, pleth: 64, barGraph: 7,
                                           pulseRate: .beatsPerMinute(72), spo2: .percent(98), perfusionIndex: .percent(2.35))
        var decoder = Contec.DeviceStreamDecoder()
        let messages = decoder.decode(wire)
        #expect(messages == [.realTime(expected)])
        guard case .realTime(let data) = messages.first else { return }
        #expect(data.signalStrength == 5 && data.pulseBeep && !data.probeError && !data.searchingTooLong && !data.lowSpO2)
        #expect(data.pleth == 64 && !data.searchingPulse && data.barGraph == 7 && !data.perfusionIndexFlaggedInvalid)
        #expect(data.pulseRate == .beatsPerMinute(72))
        #expect(data.spo2 == .percent(98))
        #expect(data.usablePerfusionIndex == .percent(2.35))
        #expect(expected.packet.encoded() == wire)
    }

    @Test("real-time packet with PR 150: the high byte gets bit 3")
    func realTimePR150() {
        let wire = hexBytes("01 A8 C5 C0 87 96 E2 EB 80")
        let expected = Contec.RealTimeData(signalStrength: 5, pulseBeep: true, pleth: 64, barGraph: 7,
                                           pulseRate: .beatsPerMinute(150), spo2: .percent(98), perfusionIndex: .percent(2.35))
        #expect(Contec.Packet(wire: wire).flatMap(Contec.RealTimeData.init) == expected)
        #expect(expected.packet.encoded() == wire)
    }

    @Test("real-time flags and invalid markers: probe error, searching, PR 0xFF, SpO2 0x7F, PI 0xFFFF and the PI-invalid bit")
    func realTimeInvalid() throws {
        let data = Contec.RealTimeData(signalStrength: 0, searchingTooLong: true, lowSpO2: true, probeError: true, pleth: 0x40,
                                       searchingPulse: true, barGraph: 0, perfusionIndexFlaggedInvalid: true)
        let wire = data.packet.encoded()
        // b2 = B0 (probe error, low SpO2, searching too long), b3 = C0, b4 = 10, PR FF, SpO2 7F, PI FF FF;
        // the high byte carries bit 7 of b2, b3, PR and both PI bytes: 80 | 01 | 02 | 08 | 20 | 40 = EB.
        #expect(wire == hexBytes("01 EB B0 C0 90 FF FF FF FF"))
        let decoded = try #require(Contec.Packet(wire: wire).flatMap(Contec.RealTimeData.init))
        #expect(decoded == data)
        #expect(decoded.pulseRate == nil && decoded.spo2 == nil && decoded.perfusionIndex == nil)
        #expect(decoded.probeError && decoded.searchingPulse && decoded.searchingTooLong && decoded.lowSpO2)
        // The PI-invalid bit alone makes PI unusable even with a value present.
        let flagged = Contec.RealTimeData(perfusionIndexFlaggedInvalid: true, perfusionIndex: .percent(1.5))
        #expect(flagged.usablePerfusionIndex == nil)
        // SpO2 above 100 is not a reading.
        #expect(Contec.Packet(wire: hexBytes("01 80 80 80 80 C8 E5 80 80")).flatMap(Contec.RealTimeData.init)?.spo2 == nil)
    }

    @Test("the high-byte scheme for any packet type")
    func highByteScheme() throws {
        let packet = try #require(Contec.Packet(type: 0x05, payload: [0x00, 0x80, 0xFF, 0x7F]))
        #expect(packet.encoded() == hexBytes("05 86 80 80 FF FF"))
        #expect(Contec.Packet(wire: packet.encoded()) == packet)
        #expect(Contec.Packet(type: 0x80, payload: []) == nil)
        #expect(Contec.Packet(wire: hexBytes("05 06 80")) == nil)     // high byte without bit 7
        #expect(Contec.Packet(wire: hexBytes("05 80 00")) == nil)     // data byte without bit 7
        #expect(Contec.Packet(wire: hexBytes("85 80 80")) == nil)     // type with bit 7
        #expect(Contec.Payload([1, 2, 3, 4, 5, 6, 7, 8]) == nil)
    }

    @Test("feedback 0x0B, free feedback 0x0C, disconnect 0x0D, device identifier 0x04")
    func otherMessages() throws {
        var decoder = Contec.DeviceStreamDecoder()
        let stream = hexBytes("0B 81 A1 85") + hexBytes("0C 80") + hexBytes("0D 80 81") + hexBytes("04 80 C3 CD D3 B5 B0 C4 80")
        let messages = decoder.decode(stream)
        #expect(messages == [
            .commandFeedback(Contec.CommandFeedback(command: .startRealTime, reason: .unsupported)),
            .freeFeedback,
            .disconnectNotice(.shutdown),
            .deviceIdentifier(Contec.DeviceIdentifier("CMS50D")),
        ])
        #expect(messages.flatMap { $0.encoded() } == stream)
        #expect(Contec.FeedbackReason.unsupported.description == "unsupported")
        // The host can set the identifier (0x04 downlink).
        var host = Contec.HostStreamDecoder()
        #expect(host.decode(hexBytes("04 80 C3 CD D3 B5 B0 C4 80")) == [.setDeviceIdentifier(Contec.DeviceIdentifier("CMS50D"))])
    }

    @Test("packet lengths per type, both directions")
    func lengths() {
        let uplink: [UInt8: Int] = [0x01: 9, 0x04: 9, 0x05: 9, 0x07: 8, 0x12: 8, 0x08: 8, 0x09: 6, 0x0F: 8, 0x0A: 4,
                                    0x0B: 4, 0x0C: 2, 0x0D: 3, 0x0E: 3, 0x10: 3, 0x11: 9, 0x15: 9]
        for type in UInt8(0)...0x7F {
            #expect(Contec.Direction.deviceToHost.packetLength(type: type) == uplink[type])
        }
        #expect(Contec.Direction.hostToDevice.packetLength(type: 0x7D) == 9)
        #expect(Contec.Direction.hostToDevice.packetLength(type: 0x04) == 9)
        #expect(Contec.Direction.hostToDevice.packetLength(type: 0x01) == nil)
    }
}

enum ContecSamples {
    static func realTime<R: RandomNumberGenerator>(_ rng: inout R) -> Contec.RealTimeData {
        Contec.RealTimeData(
            signalStrength: UInt8.random(in: 0...15, using: &rng), searchingTooLong: Bool.random(using: &rng),
            lowSpO2: Bool.random(using: &rng), pulseBeep: Bool.random(using: &rng), probeError: Bool.random(using: &rng),
            pleth: UInt8.random(in: 0...127, using: &rng), searchingPulse: Bool.random(using: &rng),
            barGraph: UInt8.random(in: 0...15, using: &rng), perfusionIndexFlaggedInvalid: Bool.random(using: &rng),
            pulseRate: Bool.random(using: &rng) ? .beatsPerMinute(Double(UInt8.random(in: 0...254, using: &rng))) : nil,
            spo2: Bool.random(using: &rng) ? .percent(Double(UInt8.random(in: 0...100, using: &rng))) : nil,
            perfusionIndex: Bool.random(using: &rng) ? .percent(Double(UInt16.random(in: 0...2200, using: &rng)) / 100) : nil)
    }
}

@Suite("Contec round trips and robustness")
struct ContecStreamTests {
    @Test("property: real-time data → packet → chunked stream → the same data")
    func realTimeRoundTrip() async {
        await propertyCheck(count: 500, input: Gen.uint64(), Gen.int(in: 1...20)) { seed, maxChunk in
            var rng = seededRNG(seed)
            let samples = (0..<20).map { _ in ContecSamples.realTime(&rng) }
            var decoder = Contec.DeviceStreamDecoder()
            var decoded: [Contec.DeviceMessage] = []
            for chunk in randomChunks(samples.flatMap { $0.packet.encoded() }, maxChunk: maxChunk, using: &rng) {
                decoder.push(contentsOf: chunk) { decoded.append($0) }
            }
            #expect(decoded == samples.map { .realTime($0) })
        }
    }

    @Test("property: any payload survives the high-byte scheme; any control command round-trips")
    func highByteRoundTrip() async {
        await propertyCheck(count: 1000, input: Gen.uint8(in: 0...0x7F), Gen.uint8().array(of: 0...7)) { type, bytes in
            guard let payload = Contec.Payload(bytes), let packet = Contec.Packet(type: type, payload: payload) else {
                Issue.record("\(bytes) should fit")
                return
            }
            #expect(Array(packet.payload) == bytes)
            #expect(Contec.Packet(wire: packet.encoded()) == packet)
            let command = Contec.ControlCommand(Contec.ControlCode(rawValue: bytes.first ?? 0xA1), parameters: Contec.Payload(bytes.dropFirst().prefix(6)) ?? [])
            var decoder = Contec.HostStreamDecoder()
            #expect(decoder.decode(command.encoded()) == [.control(command)])
        }
    }

    @Test("20 000 bursts of garbage and truncated packets: bounded, and the next packet always decodes")
    func resynchronises() {
        var rng = seededRNG(0xC0)
        var decoder = Contec.DeviceStreamDecoder()
        var maxBuffered = 0
        for _ in 0..<20_000 {
            let sample = ContecSamples.realTime(&rng)
            let other = ContecSamples.realTime(&rng).packet.encoded()
            var junk = rng.bytes(Int.random(in: 0...30, using: &rng))
            if Bool.random(using: &rng) { junk += other.prefix(Int.random(in: 1..<other.count, using: &rng)) }
            var last: Contec.DeviceMessage?
            for chunk in randomChunks(junk + sample.packet.encoded(), maxChunk: 12, using: &rng) {
                decoder.push(contentsOf: chunk) { last = $0 }
                maxBuffered = max(maxBuffered, decoder.bufferedByteCount)
            }
            #expect(last == .realTime(sample))
        }
        #expect(maxBuffered < 9)
        let statistics = decoder.statistics
        #expect(statistics.truncatedPackets > 0 && statistics.unknownTypes > 0 && statistics.bytesDiscarded > 0)
        #expect(statistics.packetsDecoded >= 20_000)
    }

    @Test("host side: garbage then a control command always decodes")
    func hostResynchronises() {
        var rng = seededRNG(0xC1)
        var decoder = Contec.HostStreamDecoder()
        for _ in 0..<10_000 {
            let command = [Contec.ControlCommand.startRealTime, .stopRealTime, .keepAlive, .queryDeviceIdentifier]
                .randomElement(using: &rng) ?? .keepAlive
            var last: Contec.HostMessage?
            for chunk in randomChunks(rng.bytes(Int.random(in: 0...30, using: &rng)) + command.encoded(), maxChunk: 12, using: &rng) {
                decoder.push(contentsOf: chunk) { last = $0 }
            }
            #expect(last == .control(command))
        }
    }
}
