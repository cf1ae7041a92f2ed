import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore
import Testing

/// One Nonin format: the driver configuration and the simulator that starts in it.
enum NoninCase: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case df2, df7, df8
    var testDescription: String { rawValue.uppercased() }
    var format: Nonin.DataFormat {
        switch self { case .df2: .df2; case .df7: .df7; case .df8: .df8 }
    }
    /// Samples per second the driver publishes.
    var samplesPerSecond: Int { self == .df8 ? 1 : 3 }
    /// How long after a change on the patient the first sample showing it can take: DF2/DF7 sample the
    /// patient at each packet's first frame, so up to two packet periods (2 × 1/3 s) plus the last frame's
    /// transmission at 9600 baud; DF8 one record period plus its transmission.
    var reactionLimit: Duration { self == .df8 ? .milliseconds(1_010) : .milliseconds(672) }
}

typealias AnyNoninRig = (
    run: (Duration) -> Void, now: () -> MonotonicInstant, samples: (MonotonicInstant) -> [VitalSample],
    inject: (String, [String]) -> String, first: (OximetryQuality, MonotonicInstant) -> (Duration, VitalSample)?,
    connections: (MonotonicInstant) -> [(MonotonicInstant, DeviceConnection)], noData: (MonotonicInstant) -> [MonotonicInstant],
    counters: () -> OximeterCounters, observe: (PatientObservation) -> Void, unplug: () -> Void, replug: () -> Void
)

func noninRig(_ c: NoninCase, observation: PatientObservation = knownObservation(), setFormat: Bool = false) -> AnyNoninRig {
    func wrap<K: NoninSimulatorKind>(_ rig: OximeterRig<NoninSession, SimulatedNonin<K>>) -> AnyNoninRig {
        (run: { rig.run($0) }, now: { rig.now }, samples: { rig.samples(after: $0) },
         inject: { name, args in
             rig.network.perform(rig.device, as: SimulatedNonin<K>.self) { d, now, _ -> String in
                 (try? d.inject(FaultCommand(name: name, arguments: args), at: now)) ?? "error"
             } ?? "no device"
         },
         first: { rig.firstSample(with: $0, after: $1) }, connections: { rig.connections(after: $0) },
         noData: { rig.noData(after: $0) }, counters: { rig.counters }, observe: rig.observe, unplug: rig.unplug, replug: rig.replug)
    }
    let session = NoninSession(configuration: .init(format: c.format, setFormatAtConnect: setFormat))
    switch c {
    case .df2: return wrap(OximeterRig(session: session, device: SimulatedNoninDF2(), bitsPerSecond: 9600, observation: observation))
    case .df7: return wrap(OximeterRig(session: session, device: SimulatedNoninDF7(), bitsPerSecond: 9600, observation: observation))
    case .df8: return wrap(OximeterRig(session: session, device: SimulatedNoninDF8(), bitsPerSecond: 9600, observation: observation))
    }
}

@Suite("Nonin driver against its simulator (virtual time)")
struct NoninDriverTests {
    @Test("values, rate and clean flags match what the simulator was told", arguments: NoninCase.allCases)
    func values(_ c: NoninCase) {
        let rig = noninRig(c, observation: knownObservation(spo2: 93, pulse: 84, pi: 3))
        rig.run(.seconds(10))
        let samples = rig.samples(.origin)
        #expect(abs(samples.count - 10 * c.samplesPerSecond) <= 1)
        let settled = samples.dropFirst(c == .df8 ? 1 : 2)
        #expect(!settled.isEmpty)
        for sample in settled {
            #expect(sample.spo2 == .percent(93))
            #expect(sample.pulseRate == .beatsPerMinute(84))
            #expect(sample.perfusionIndex == nil)
            #expect(sample.quality == [])
            #expect(sample.measuredAt <= sample.arrivedAt)
            #expect(sample.arrivedAt - sample.measuredAt < .milliseconds(500))
        }
        #expect(rig.connections(.origin).map(\.1) == [.connected])
        let counters = rig.counters()
        #expect(counters.checksumErrors == 0 && counters.framingErrors == 0)
        #expect(counters.samplesPublished == samples.count)
    }

    @Test("each fault shows up as its flag within one packet or record", arguments: NoninCase.allCases)
    func faults(_ c: NoninCase) {
        let rig = noninRig(c)
        rig.run(.seconds(2))
        let cases: [(String, OximetryQuality)] = [
            ("probe-off", .probeOff), ("artifact", .artifact), ("low-perfusion", .lowPerfusion), ("out-of-track", .outOfTrack),
        ]
        for (fault, flag) in cases {
            let start = rig.now()
            #expect(rig.inject(fault, ["3s"]) == "\(fault) for 3 s")
            rig.run(.seconds(3))
            let found = rig.first(flag, start)
            #expect(found != nil, "\(fault) must show as \(flag.names)")
            if let (delay, sample) = found {
                // Perfusion is shown on pulses only (12 frames per beat): add one beat period (80 bpm).
                let limit = flag == .lowPerfusion && c != .df8 ? c.reactionLimit + .milliseconds(750) : c.reactionLimit
                #expect(delay <= limit, "\(fault) took \(delay)")
                if flag == .probeOff || flag == .outOfTrack {
                    #expect(sample.spo2 == nil && sample.pulseRate == nil, "\(fault): values must be missing, not held")
                    #expect(!sample.isValid)
                }
                if flag == .probeOff { #expect(sample.quality.contains(.sensorFault)) }
            }
            rig.run(.seconds(2))  // fault over; back to clean
            #expect(rig.samples(rig.now() - .seconds(1)).allSatisfy { $0.quality == [] && $0.spo2 != nil })
        }
    }

    @Test("low battery shows as .lowBattery within one packet or record; the values stay valid; gone when it ends",
          arguments: NoninCase.allCases)
    func lowBattery(_ c: NoninCase) {
        let rig = noninRig(c)
        rig.run(.seconds(2))
        #expect(rig.samples(.origin).allSatisfy { !$0.quality.contains(.lowBattery) })
        let start = rig.now()
        #expect(rig.inject("low-battery", ["3s"]) == "low-battery for 3 s")
        rig.run(.seconds(3))
        let found = rig.first(.lowBattery, start)
        #expect(found != nil, "low battery must show as its flag")
        if let (delay, sample) = found {
            #expect(delay <= c.reactionLimit, "low battery took \(delay)")
            // A low battery is not a measurement problem: the values are still published and valid.
            #expect(sample.quality == .lowBattery && sample.isValid)
            #expect(sample.spo2 == .percent(95) && sample.pulseRate == .beatsPerMinute(80))
        }
        // Every sample from the reaction limit until the fault ends carries the flag.
        let during = rig.samples(start + c.reactionLimit).filter { $0.arrivedAt < start + .seconds(3) }
        #expect(during.count >= 2 * c.samplesPerSecond - 1)
        #expect(during.allSatisfy { $0.quality == .lowBattery })
        rig.run(.seconds(2))
        let after = rig.samples(rig.now() - .seconds(1))
        #expect(!after.isEmpty && after.allSatisfy { $0.quality == [] && $0.isValid })
    }

    @Test("a scenario's probe-off (PatientObservation.conditions) is encoded faithfully", arguments: NoninCase.allCases)
    func scenarioProbeOff(_ c: NoninCase) {
        let rig = noninRig(c)
        rig.run(.seconds(2))
        let start = rig.now()
        rig.observe(knownObservation(conditions: [.probeOff]))
        rig.run(.seconds(12))
        let during = rig.samples(start + c.reactionLimit)
        #expect(!during.isEmpty)
        #expect(during.allSatisfy { $0.quality.contains(.probeOff) && $0.spo2 == nil && $0.pulseRate == nil })
        rig.observe(knownObservation())
        let back = rig.now()
        rig.run(.seconds(3))
        #expect(rig.samples(back + .seconds(2)).allSatisfy { $0.isValid && $0.spo2 == .percent(95) })
    }

    @Test("silence: .silent and an explicit no-data exactly at the staleness limit; back to .connected after", arguments: NoninCase.allCases)
    func silence(_ c: NoninCase) {
        let rig = noninRig(c)
        rig.run(.seconds(2))
        let start = rig.now()
        _ = rig.inject("silence", ["5s"])
        rig.run(.seconds(6))
        let lastSample = rig.samples(.origin).filter { $0.arrivedAt <= start + .seconds(5) }.last
        let silent = rig.connections(start).first { $0.1 == .silent }
        #expect(silent != nil)
        if let silent, let lastSample {
            let limit: Duration = c == .df8 ? .milliseconds(2_500) : .seconds(1)
            #expect(silent.0 == lastSample.arrivedAt + limit)
            #expect(rig.noData(start) == [silent.0])
        }
        #expect(rig.connections(start).map(\.1) == [.silent, .connected])
        #expect(rig.counters().staleEpisodes == 1)
    }

    @Test("corrupt frames: counted, never published; staleness reports the gap", arguments: NoninCase.allCases)
    func corrupt(_ c: NoninCase) {
        let rig = noninRig(c)
        rig.run(.seconds(2))
        let before = rig.counters()
        let start = rig.now()
        _ = rig.inject("corrupt", ["4s"])
        rig.run(.seconds(4))
        let after = rig.counters()
        if c == .df8 {
            #expect(after.bytesDiscarded > before.bytesDiscarded)
        } else {
            #expect(after.checksumErrors > before.checksumErrors)
            #expect(after.bytesDiscarded > before.bytesDiscarded + 1_000)  // once unlocked, bad frames are skipped bytes
        }
        #expect(rig.samples(start + .milliseconds(400)).isEmpty)
        #expect(rig.connections(start).map(\.1) == [.silent])
        rig.run(.seconds(3))
        #expect(rig.connections(start).map(\.1) == [.silent, .connected])
        #expect(rig.samples(rig.now() - .seconds(1)).allSatisfy { $0.isValid })
    }

    @Test("garbage between frames: counted, and the next packet is read", arguments: NoninCase.allCases)
    func garbage(_ c: NoninCase) {
        let rig = noninRig(c)
        rig.run(.seconds(2))
        let before = rig.counters()
        let start = rig.now()
        _ = rig.inject("garbage", [])
        rig.run(.seconds(3))
        let after = rig.counters()
        #expect(after.bytesDiscarded > before.bytesDiscarded)
        #expect(rig.samples(rig.now() - .seconds(1)).count >= c.samplesPerSecond - 1)
        // DF2/DF7 frames carry a checksum, so noise never becomes a sample; DF8 has none, so noise can
        // decode as a bogus record: only the records after it are guaranteed (a DF8 limitation).
        let from = c == .df8 ? start + .milliseconds(1_100) : start
        #expect(rig.samples(from).allSatisfy { $0.spo2 == .percent(95) })
    }

    @Test("unplug: .disconnected at once; replug: .connected with the first sample", arguments: NoninCase.allCases)
    func unplug(_ c: NoninCase) {
        let rig = noninRig(c)
        rig.run(.seconds(2))
        let start = rig.now()
        rig.unplug()
        rig.run(.seconds(2))
        rig.replug()
        rig.run(.seconds(3))
        let changes = rig.connections(start)
        #expect(changes.map(\.1) == [.disconnected, .connected])
        #expect(changes.first?.0 == start)
        #expect(rig.samples(rig.now() - .seconds(1)).allSatisfy { $0.isValid })
    }

    @Test("set-format at connect: ACK, then frames in the new format", arguments: [NoninCase.df7, .df8])
    func setFormat(_ c: NoninCase) {
        // The simulator starts in DF2; the driver asks for DF7 or DF8.
        let rig = OximeterRig(session: NoninSession(configuration: .init(format: c.format, setFormatAtConnect: true)),
                              device: SimulatedNoninDF2(), bitsPerSecond: 9600, observation: knownObservation())
        rig.run(.seconds(5))
        #expect(rig.notices() == [.dataFormatAccepted("DF\(c.format.rawValue)")])
        let samples = rig.samples()
        #expect(abs(samples.count - 5 * c.samplesPerSecond) <= 2)
        #expect(samples.allSatisfy { $0.isValid && $0.spo2 == .percent(95) && $0.pulseRate == .beatsPerMinute(80) })
        #expect(rig.counters.checksumErrors == 0)
    }

    @Test("set-format with no answer: a notice after the reply time-out, and data is read anyway")
    func setFormatNoAnswer() {
        var session = NoninSession(configuration: .init(format: .df2, setFormatAtConnect: true))
        var effects = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &effects)
        #expect(effects.outgoing == [[0x02, 0x70, 0x02, 0x02, 0x02, 0x03]])
        #expect(session.nextDeadline == .origin + .seconds(1))
        var fx = EndpointEffects<OximeterOutput>()
        session.tick(at: .origin + .seconds(1) - .nanoseconds(1), effects: &fx)
        #expect(fx.outputs.isEmpty)
        session.tick(at: .origin + .seconds(1), effects: &fx)
        // Nothing came at all, so the staleness rule (counted from link-up) fires at the same instant.
        #expect(fx.outputs == [
            .notice(.noAnswer(command: "set data format DF2", after: .seconds(1))),
            .connection(.silent, at: .origin + .seconds(1)), .noData(lastSampleAt: nil, at: .origin + .seconds(1)),
        ])
        // Data is read after the time-out.
        var fx2 = EndpointEffects<OximeterOutput>()
        session.receive(noninBytes(.df2), at: .origin + .seconds(2), effects: &fx2)
        #expect(fx2.outputs.contains { if case .sample(let s) = $0 { s.spo2 == .percent(96) } else { false } })
    }

    @Test("staleness edge: one tick under the limit nothing, at the limit .silent + noData (pure session)", arguments: NoninCase.allCases)
    func stalenessEdge(_ c: NoninCase) {
        var session = NoninSession(configuration: .init(format: c.format))
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        let limit = session.staleAfter
        #expect(limit == (c == .df8 ? .milliseconds(2_500) : .seconds(1)))
        // No data at all since link-up.
        session.tick(at: .origin + limit - .nanoseconds(1), effects: &fx)
        #expect(fx.outputs.isEmpty)
        #expect(session.nextDeadline == .origin + limit)
        session.tick(at: .origin + limit, effects: &fx)
        #expect(fx.outputs == [.connection(.silent, at: .origin + limit), .noData(lastSampleAt: nil, at: .origin + limit)])
        // A valid sample: connected; silence counted from it.
        let t = MonotonicInstant.origin + .seconds(10)
        var fx2 = EndpointEffects<OximeterOutput>()
        session.receive(noninBytes(c), at: t, effects: &fx2)
        #expect(fx2.outputs.first == .connection(.connected, at: t))
        #expect(session.nextDeadline == t + limit)
        var fx3 = EndpointEffects<OximeterOutput>()
        session.tick(at: t + limit - .nanoseconds(1), effects: &fx3)
        #expect(fx3.outputs.isEmpty)
        session.tick(at: t + limit, effects: &fx3)
        #expect(fx3.outputs == [.connection(.silent, at: t + limit), .noData(lastSampleAt: t, at: t + limit)])
    }

    @Test("random and truncated bytes never crash or wedge the session; it reads the next valid packet", arguments: NoninCase.allCases)
    func robustness(_ c: NoninCase) {
        var random = TestRandom(state: 42)
        var session = NoninSession(configuration: .init(format: c.format))
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        let valid = noninBytes(c)
        for round in 0..<300 {
            var garbage = random.bytes(random.below(64))
            if round % 3 == 0 { garbage += valid.prefix(random.below(valid.count)) }  // truncated
            let now = MonotonicInstant.origin + .milliseconds(round * 10)
            var effects = EndpointEffects<OximeterOutput>()
            session.receive(garbage, at: now, effects: &effects)
            var after = EndpointEffects<OximeterOutput>()
            session.receive(valid, at: now, effects: &after)
            let samples = after.outputs.compactMap { if case .sample(let s) = $0 { s } else { nil } }
            #expect(samples.last?.spo2 == .percent(96), "round \(round)")
            #expect(samples.last?.pulseRate == .beatsPerMinute(70))
        }
    }
}

/// Enough bytes for at least one complete packet (DF2/DF7: two packets, the second surely aligned) or
/// record (DF8: two records), SpO2 96 %, HR 70.
func noninBytes(_ c: NoninCase) -> [UInt8] {
    let values = Nonin.PacketValues(heartRate: .beatsPerMinute(70), spo2: .percent(96))
    switch c {
    case .df2: return values.encodedPacket(.df2) + values.encodedPacket(.df2)
    case .df7: return values.encodedPacket(.df7) + values.encodedPacket(.df7)
    case .df8:
        let record = Nonin.DF8Record(heartRate: .beatsPerMinute(70), spo2: .percent(96)).encoded()
        return record + record
    }
}

@Suite("Nonin driver: packets across a silence")
struct NoninGapTests {
    @Test("a packet cut by a silence is abandoned, never completed with a later packet's frames", arguments: [NoninCase.df2, .df7])
    func gap(_ c: NoninCase) {
        let format: Nonin.FrameFormat = c == .df7 ? .df7 : .df2
        var session = NoninSession(configuration: .init(format: c.format))
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        let old = Nonin.PacketValues(heartRate: .beatsPerMinute(60), spo2: .percent(99), timerTicks: 1).encodedPacket(format)
        let new = Nonin.PacketValues(heartRate: .beatsPerMinute(120), spo2: .percent(85), timerTicks: 9).encodedPacket(format)
        // A whole old packet, then the first 10 frames of another; silence; then frames 11-25 of a later one.
        session.receive(old + old.prefix(50), at: .origin, effects: &fx)
        var after = EndpointEffects<OximeterOutput>()
        session.receive(Array(new.suffix(75)), at: .origin + NoninSession.packetGapLimit + .milliseconds(1), effects: &after)
        #expect(after.outputs.allSatisfy { if case .sample = $0 { false } else { true } })
        // One tick under the limit the frames belong together (the packet completes).
        var joined = NoninSession(configuration: .init(format: c.format))
        var fx2 = EndpointEffects<OximeterOutput>()
        joined.linkUp(at: .origin, effects: &fx2)
        joined.receive(old + old.prefix(50), at: .origin, effects: &fx2)
        var after2 = EndpointEffects<OximeterOutput>()
        joined.receive(Array(old.suffix(75)), at: .origin + NoninSession.packetGapLimit, effects: &after2)
        #expect(after2.outputs.contains { if case .sample(let s) = $0 { s.spo2 == .percent(99) } else { false } })
    }
}
