import DeviceIO
import DeviceProtocols
import DeviceSimulators
import InfusionCore
import Testing

/// Drives a simulated device alone: ticks it at its deadlines and collects what it sends, with times.
struct SimulatorDriver<Device: SimulatedDevice> {
    var device: Device
    var sent: [(MonotonicInstant, [UInt8])] = []
    var now = MonotonicInstant.origin

    init(_ device: Device) {
        self.device = device
        var fx = EndpointEffects<Device.Output>()
        self.device.linkUp(at: .origin, effects: &fx)
        sent += fx.outgoing.map { (MonotonicInstant.origin, $0) }
    }

    mutating func run(until end: MonotonicInstant) {
        while let due = device.nextDeadline, due <= end {
            var fx = EndpointEffects<Device.Output>()
            device.tick(at: due, effects: &fx)
            sent += fx.outgoing.map { (due, $0) }
            now = due
        }
        now = end
    }

    mutating func send(_ bytes: [UInt8]) -> [[UInt8]] {
        var fx = EndpointEffects<Device.Output>()
        device.receive(bytes, at: now, effects: &fx)
        return fx.outgoing
    }

    mutating func inject(_ name: String, _ arguments: String...) throws(FaultError) -> String {
        try device.inject(FaultCommand(name: name, arguments: arguments), at: now)
    }

    func bytes(from start: MonotonicInstant = .origin, to end: MonotonicInstant = MonotonicInstant(nanoseconds: .max)) -> [UInt8] {
        sent.filter { $0.0 >= start && $0.0 < end }.flatMap(\.1)
    }
}

func observation(spo2: Double = 97, pulse: Double = 60, pi: Double = 3, conditions: MeasurementConditions = []) -> PatientObservation {
    PatientObservation(time: .zero, vitals: TrueVitals(spo2: .percent(spo2), pulseRate: .beatsPerMinute(pulse), perfusionIndex: .percent(pi)),
                       conditions: conditions)
}

@Suite("Simulated oximeters")
struct OximeterSimulatorTests {
    @Test("Nonin DF2: 75 frames/s exactly, SYNC on every 25th frame, 3 packets/s with the patient's values")
    func noninPacing() {
        var sim = SimulatorDriver(SimulatedNoninDF2())
        sim.device.observe(observation(spo2: 96, pulse: 60), at: .origin)
        sim.run(until: .origin + .seconds(10) - .nanoseconds(1))
        #expect(sim.sent.count == 750)
        #expect(sim.sent[75].0 == .origin + .seconds(1))
        var decoder = Nonin.StreamDecoder(format: .df2)
        let decoded = decoder.decode(sim.bytes())
        #expect(decoded.count == 750)
        #expect(decoded.enumerated().allSatisfy { index, d in d.frame.status.contains(.sync) == (index % 25 == 0) })
        let packets = decoded.compactMap(\.packet)
        #expect(packets.count == 30)
        #expect(packets.allSatisfy { $0.values.spo2 == .percent(96) && $0.values.heartRate == .beatsPerMinute(60) })
        // The timer counts packets (1/3 s).
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $1.values.timerTicks == $0.values.timerTicks + 1 })
        #expect(decoder.statistics.checksumErrors == 0)
    }

    @Test("Nonin: RPRF/GPRF for 12 frames per beat; green at PI 3 %, yellow at 0.7 %, red at 0.3 %")
    func noninPerfusion() {
        for (pi, expected) in [(3.0, Nonin.Perfusion.high), (0.7, .marginal), (0.3, .low)] {
            var sim = SimulatorDriver(SimulatedNoninDF7())
            sim.device.observe(observation(pulse: 60, pi: pi), at: .origin)  // one beat a second
            sim.run(until: .origin + .seconds(5) - .nanoseconds(1))
            var decoder = Nonin.StreamDecoder(format: .df7)
            let statuses = decoder.decode(sim.bytes()).map(\.frame.status.perfusion)
            #expect(statuses.count == 375)
            #expect(statuses.filter { $0 != .none }.count == 5 * 12)
            #expect(statuses.allSatisfy { $0 == .none || $0 == expected })
        }
    }

    @Test("Nonin probe off: SNSA at once, recording values missing at once, -D values held 10 s then missing")
    func noninProbeOff() {
        var sim = SimulatorDriver(SimulatedNoninDF2())
        sim.device.observe(observation(spo2: 96, pulse: 70), at: .origin)
        sim.run(until: .origin + .seconds(3))
        sim.device.observe(observation(spo2: 96, pulse: 70, conditions: [.probeOff]), at: sim.now)
        let off = sim.now
        sim.run(until: off + .seconds(12))
        var decoder = Nonin.StreamDecoder(format: .df2)
        var packets: [(MonotonicInstant, Nonin.Packet)] = []
        for (time, bytes) in sim.sent {
            for d in decoder.decode(bytes) { if let p = d.packet { packets.append((time, p)) } }
        }
        let after = packets.filter { $0.0 > off + .milliseconds(340) }  // packets begun after the probe came off
        #expect(after.allSatisfy { $0.1.combinedStatus.contains(.sensorAlarm) && $0.1.values.spo2 == nil && $0.1.values.heartRate == nil })
        let held = after.filter { $0.0 < off + .seconds(10) - .milliseconds(400) }
        let gone = after.filter { $0.0 > off + .seconds(10) + .milliseconds(400) }
        #expect(!held.isEmpty && !gone.isEmpty)
        #expect(held.allSatisfy { $0.1.values.spo2Display == .percent(96) && $0.1.values.heartRateDisplay == .beatsPerMinute(70) })
        #expect(gone.allSatisfy { $0.1.values.spo2Display == nil && $0.1.values.heartRateDisplay == nil })
    }

    @Test("Nonin DF8: one record a second; SNSA with held values, then 511/127")
    func noninDF8() {
        var sim = SimulatorDriver(SimulatedNoninDF8())
        sim.device.observe(observation(spo2: 95, pulse: 75, conditions: [.probeOff]), at: .origin)
        sim.run(until: .origin + .seconds(13) - .nanoseconds(1))
        #expect(sim.sent.count == 13)
        var decoder = Nonin.DF8Decoder()
        let records = decoder.decode(sim.bytes())
        #expect(records.count == 13)
        #expect(records.allSatisfy { $0.status.contains(.sensorAlarm) })
        // No value was ever shown before the probe came off, so there is nothing to hold.
        #expect(records.allSatisfy { $0.spo2 == nil })
    }

    @Test("Nonin set-format: ACK and switch within 5 s of link-up, NAK after")
    func noninSetFormat() {
        var sim = SimulatorDriver(SimulatedNoninDF2())
        sim.run(until: .origin + .seconds(2))
        #expect(sim.send(Nonin.HostCommand.setDataFormat(.df8).encoded) == [[0x06]])
        #expect(sim.device.format == .df8)
        sim.run(until: .origin + .seconds(6))
        #expect(sim.send(Nonin.HostCommand.setDataFormat(.df2).encoded) == [[0x15]])
        #expect(sim.device.format == .df8)
    }

    @Test("Masimo: one line a second with the patient's values and a running device clock")
    func masimo() {
        var sim = SimulatorDriver(SimulatedMasimo())
        sim.device.observe(observation(spo2: 97, pulse: 72, pi: 3.6), at: .origin)
        sim.run(until: .origin + .seconds(3))
        let lines = String(decoding: sim.bytes(), as: UTF8.self).split(separator: "\r\n")
        #expect(lines == [
            "01/01/25 08:00:00 SN=0123456789 SPO2=097% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000800",
            "01/01/25 08:00:01 SN=0123456789 SPO2=097% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000800",
            "01/01/25 08:00:02 SN=0123456789 SPO2=097% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000800",
            "01/01/25 08:00:03 SN=0123456789 SPO2=097% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000800",
        ])
    }

    @Test("Masimo probe off: EXC sensor off and dashes")
    func masimoProbeOff() throws {
        var sim = SimulatorDriver(SimulatedMasimo())
        _ = try sim.inject("probe-off")
        sim.run(until: .origin)
        let line = String(decoding: sim.bytes(), as: UTF8.self)
        #expect(line.contains("SPO2=---% BPM=--- PI=--.--%"))
        #expect(line.contains("EXC=000820"))
    }

    @Test("Contec: nothing before start, 60 packets/s after, feedback for unsupported commands, free feedback on stop")
    func contec() {
        var sim = SimulatorDriver(SimulatedContec())
        sim.run(until: .origin + .seconds(1))
        #expect(sim.sent.isEmpty)
        #expect(sim.send(Contec.ControlCommand.startRealTime.encoded()).isEmpty)
        let started = sim.now
        sim.run(until: started + .seconds(2) - .nanoseconds(1))
        #expect(sim.sent.count == 120)
        var decoder = Contec.DeviceStreamDecoder()
        let messages = decoder.decode(sim.bytes())
        #expect(messages.count == 120)
        #expect(messages.allSatisfy { if case .realTime(let d) = $0 { d.spo2 == .percent(98) && d.pulseRate == .beatsPerMinute(72) } else { false } })
        #expect(sim.send(Contec.ControlCommand(.querySegmentAmount).encoded()) == [Contec.CommandFeedback(command: .querySegmentAmount, reason: .unsupported).packet.encoded()])
        #expect(sim.send(Contec.ControlCommand.queryDeviceIdentifier.encoded()) == [Contec.DeviceIdentifier("CMS50D+").packet.encoded()])
        #expect(sim.send(Contec.ControlCommand.stopRealTime.encoded()) == [[0x0C, 0x80]])
        #expect(!sim.device.streaming)
    }

    @Test("low battery: Nonin STAT2 bit 0 on each packet begun during it (DF8: byte 4 bit 0), values unchanged; gone after")
    func noninLowBattery() throws {
        /// The packets a simulated DF2 or DF7 Nonin sends in 4 s with a 2-s low battery from the start.
        func packets<K: NoninSimulatorKind>(_ device: SimulatedNonin<K>, _ format: Nonin.FrameFormat) throws -> [Nonin.Packet] {
            var sim = SimulatorDriver(device)
            sim.device.observe(observation(spo2: 96, pulse: 70), at: .origin)
            #expect(try sim.inject("low-battery", "2s") == "low-battery for 2 s")
            sim.run(until: .origin + .seconds(4) - .nanoseconds(1))
            var decoder = Nonin.StreamDecoder(format: format)
            return decoder.decode(sim.bytes()).compactMap(\.packet)
        }
        for format in [Nonin.FrameFormat.df2, .df7] {
            let packets = format == .df2 ? try packets(SimulatedNoninDF2(), .df2) : try packets(SimulatedNoninDF7(), .df7)
            #expect(packets.count == 12)
            // Packets begin every 1/3 s: the six begun in the first 2 s carry the bit, the rest do not.
            #expect(packets.prefix(6).allSatisfy { $0.values.status2 == .lowBattery }, "\(format)")
            #expect(packets.dropFirst(6).allSatisfy { $0.values.status2 == [] }, "\(format)")
            #expect(packets.allSatisfy { $0.values.spo2 == .percent(96) && $0.values.heartRate == .beatsPerMinute(70) })
            #expect(packets.allSatisfy { $0.combinedStatus.intersection([.sensorAlarm, .artifact, .outOfTrack]).isEmpty })
        }
        var df8 = SimulatorDriver(SimulatedNoninDF8())
        df8.device.observe(observation(spo2: 96, pulse: 70), at: .origin)
        _ = try df8.inject("low-battery", "2s")
        df8.run(until: .origin + .seconds(4) - .nanoseconds(1))
        #expect(df8.sent.count == 4)
        #expect(df8.sent.map { $0.1[3] & 0x01 } == [1, 1, 0, 0])  // byte 4 bit 0, records at 0, 1, 2 and 3 s
        var decoder = Nonin.DF8Decoder()
        let records = decoder.decode(df8.bytes())
        #expect(records.map { $0.status.contains(.lowBattery) } == [true, true, false, false])
        #expect(records.allSatisfy { $0.spo2 == .percent(96) && $0.heartRate == .beatsPerMinute(70) })
    }

    @Test("low battery: Masimo ALARM=0040 with the values unchanged; Contec refuses it (its format has no battery bit)")
    func lowBatteryMasimoContec() throws {
        var masimo = SimulatorDriver(SimulatedMasimo())
        masimo.device.observe(observation(spo2: 97, pulse: 72, pi: 3.6), at: .origin)
        #expect(try masimo.inject("low-battery", "1s") == "low-battery for 1 s")
        masimo.run(until: .origin + .seconds(1))
        let lines = String(decoding: masimo.bytes(), as: UTF8.self).split(separator: "\r\n")
        #expect(lines == [
            "01/01/25 08:00:00 SN=0123456789 SPO2=097% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0040 EXC=000800",
            "01/01/25 08:00:01 SN=0123456789 SPO2=097% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000800",
        ])
        var contec = SimulatorDriver(SimulatedContec())
        let refusal = #expect(throws: FaultError.self) { try contec.inject("low-battery", "5s") }
        #expect(refusal?.description.contains("no battery bit") == true)
        #expect(SimulatedContec.faultHelp.allSatisfy { !$0.hasPrefix("low-battery") })
        #expect(SimulatedMasimo.faultHelp.contains { $0.hasPrefix("low-battery") })
        #expect(SimulatedNoninDF8.faultHelp.contains { $0.hasPrefix("low-battery") })
    }

    @Test("faults: durations, clear, and clear errors for bad input")
    func faultParsing() throws {
        var faults = OximeterFaults()
        #expect(try faults.inject(FaultCommand(name: "probe-off", arguments: ["30s"]), at: .origin) == "probe-off for 30 s")
        #expect(faults.conditions(at: .origin + .seconds(30) - .nanoseconds(1)) == .probeOff)
        #expect(faults.conditions(at: .origin + .seconds(30)) == [])
        #expect(try faults.inject(FaultCommand(name: "silence"), at: .origin) == "silence until clear")
        #expect(faults.isSilent(at: .origin + .seconds(1_000)))
        _ = try faults.inject(FaultCommand(name: "clear"), at: .origin)
        #expect(!faults.isSilent(at: .origin))
        #expect(throws: FaultError.self) { try faults.inject(FaultCommand(name: "probe-off", arguments: ["soon"]), at: .origin) }
        #expect(throws: FaultError.self) { try faults.inject(FaultCommand(name: "explode"), at: .origin) }
        #expect(faults.takeGarbage() == nil)
        _ = try faults.inject(FaultCommand(name: "garbage"), at: .origin)
        #expect(faults.takeGarbage()?.count == 32)
        #expect(faults.takeGarbage() == nil)
    }
}

