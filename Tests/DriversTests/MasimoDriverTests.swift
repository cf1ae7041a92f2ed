import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore
import Testing

@Suite("Masimo driver against its simulator (virtual time)")
struct MasimoDriverTests {
    func rig(_ observation: PatientObservation = knownObservation()) -> OximeterRig<MasimoSession, SimulatedMasimo> {
        OximeterRig(session: MasimoSession(), device: SimulatedMasimo(), bitsPerSecond: 9600, observation: observation)
    }

    @Test("values, PI, rate, device-time mapping and clean flags match what the simulator was told")
    func values() {
        let rig = rig(knownObservation(spo2: 94, pulse: 77, pi: 2.5))
        rig.run(.milliseconds(10_500))
        let samples = rig.samples()
        #expect(samples.count == 11)  // lines at 0…10 s
        for sample in samples {
            #expect(sample.spo2 == .percent(94))
            #expect(sample.pulseRate == .beatsPerMinute(77))
            #expect(sample.perfusionIndex == .percent(2.5))
            #expect(sample.quality == [])
            #expect(sample.measuredAt <= sample.arrivedAt)
            #expect(sample.arrivedAt - sample.measuredAt < .milliseconds(300))
        }
        // The device clock ticks one second per line, so the mapped times are one second apart.
        for (a, b) in zip(samples, samples.dropFirst()) { #expect(b.measuredAt - a.measuredAt == .seconds(1)) }
        #expect(rig.connections().map(\.1) == [.connected])
        #expect(rig.counters.framingErrors == 0)
    }

    @Test("low SpO2 sets the ALARM bits but no quality flag (a physiological alarm, not a measurement problem)")
    func lowSpO2() {
        let rig = rig(knownObservation(spo2: 86))
        rig.run(.seconds(3))
        #expect(rig.samples().allSatisfy { $0.spo2 == .percent(86) && $0.quality == [] && $0.isValid })
    }

    @Test("each fault shows up as its flag by the next line", arguments: [
        ("probe-off", OximetryQuality.probeOff), ("artifact", .lowSignalQuality), ("low-perfusion", .lowPerfusion),
        ("out-of-track", .searching),
    ])
    func faults(_ fault: String, _ flag: OximetryQuality) {
        let rig = rig()
        rig.run(.milliseconds(2_500))
        let start = rig.now
        #expect(rig.inject(fault, "3s") == "\(fault) for 3 s")
        rig.run(.seconds(3))
        let found = rig.firstSample(with: flag, after: start)
        #expect(found != nil)
        if let (delay, sample) = found {
            #expect(delay <= .milliseconds(700))  // the next line (0.5 s later) plus its 150 ms on the wire
            #expect(!sample.isValid)
            if fault == "probe-off" || fault == "out-of-track" {
                #expect(sample.spo2 == nil && sample.pulseRate == nil && sample.perfusionIndex == nil)
            }
            if fault == "low-perfusion" { #expect(sample.perfusionIndex == .percent(0.2)) }
        }
        rig.run(.seconds(2))
        #expect(rig.samples(after: rig.now - .milliseconds(1_500)).allSatisfy { $0.isValid && $0.quality == [] })
    }

    /// How long the Radical-7 line the simulator sends during `fault` takes on the wire at 9600 8N1
    /// (10 bits a byte): the virtual wire delivers a line when its last byte is through.
    static func lineOnTheWire(during fault: String) -> Duration {
        var device = SimulatedMasimo()
        device.observe(knownObservation(), at: .origin)
        _ = try? device.inject(FaultCommand(name: fault), at: .origin)
        let bytes = device.record(at: .origin).encoded(style: .radical7).count
        return .nanoseconds(Int64(bytes) * 10 * 1_000_000_000 / 9_600)
    }

    @Test("worst phase: a fault starting just after a line was sampled shows on the next line, 1 s plus that line's time on the wire",
          arguments: [
              ("probe-off", OximetryQuality.probeOff), ("artifact", .lowSignalQuality), ("low-perfusion", .lowPerfusion),
              ("out-of-track", .searching), ("low-battery", .lowBattery),
          ])
    func faultsWorstPhase(_ fault: String, _ flag: OximetryQuality) {
        let rig = rig()
        rig.run(.seconds(2))  // the line of t = 2 s has just been sampled and sent, without the fault
        let start = rig.now
        #expect(rig.inject(fault, "3s") == "\(fault) for 3 s")
        rig.run(.seconds(3))
        let bound = Duration.seconds(1) + Self.lineOnTheWire(during: fault)
        #expect(bound < .milliseconds(1_150), "the documented bound (docs/oximeters.md) is 1.15 s")
        let found = rig.firstSample(with: flag, after: start)
        #expect(found != nil, "\(fault) must show as \(flag.names)")
        if let (delay, _) = found {
            // More than 1 s: the line sampled at the fault's start did not carry it (this is the worst phase).
            #expect(delay > .seconds(1) && delay <= bound, "\(fault) took \(delay); the line of t = 3 s arrives by \(bound)")
        }
    }

    @Test("low battery: ALARM low battery shows as .lowBattery on the next line; the values stay valid; gone when it ends")
    func lowBattery() {
        let rig = rig(knownObservation(spo2: 94, pulse: 77, pi: 2.5))
        rig.run(.milliseconds(2_500))
        #expect(rig.samples().allSatisfy { !$0.quality.contains(.lowBattery) })
        let start = rig.now
        #expect(rig.inject("low-battery", "3s") == "low-battery for 3 s")
        rig.run(.seconds(3))
        let during = rig.samples(after: start)
        #expect(during.count == 3)  // lines at 3, 4 and 5 s
        #expect(during.allSatisfy {
            $0.quality == .lowBattery && $0.isValid && $0.spo2 == .percent(94) && $0.pulseRate == .beatsPerMinute(77)
                && $0.perfusionIndex == .percent(2.5)
        })
        rig.run(.seconds(2))
        let after = rig.samples(after: start + .milliseconds(3_500))
        #expect(!after.isEmpty && after.allSatisfy { $0.quality == [] && $0.isValid })
    }

    @Test("a scenario's probe-off: EXC sensor off and dashes")
    func scenarioProbeOff() {
        let rig = rig()
        rig.run(.milliseconds(1_500))
        rig.observe(knownObservation(conditions: [.probeOff, .motionArtifact]))
        let start = rig.now
        rig.run(.seconds(3))
        let during = rig.samples(after: start)
        #expect(during.count == 3)
        #expect(during.allSatisfy { $0.quality.isSuperset(of: [.probeOff, .lowSignalQuality]) && $0.spo2 == nil })
    }

    @Test("silence: .silent and no-data exactly 2.5 s after the last line; then back")
    func silence() {
        let rig = rig()
        rig.run(.milliseconds(2_500))
        let start = rig.now
        rig.inject("silence", "5s")
        rig.run(.seconds(7))
        let last = rig.samples().last { $0.arrivedAt < start + .seconds(1) }
        let changes = rig.connections(after: start)
        #expect(changes.map(\.1) == [.silent, .connected])
        if let last, let silent = changes.first {
            #expect(silent.0 == last.arrivedAt + .milliseconds(2_500))
            #expect(rig.noData(after: start) == [silent.0])
        }
    }

    @Test("corrupt lines are counted and never published; staleness reports the gap")
    func corrupt() {
        let rig = rig()
        rig.run(.milliseconds(2_500))
        let start = rig.now
        rig.inject("corrupt", "4s")
        rig.run(.seconds(4))
        #expect(rig.counters.framingErrors == 4)
        #expect(rig.samples(after: start).isEmpty)
        #expect(rig.connections(after: start).map(\.1) == [.silent])
        rig.run(.seconds(2))
        #expect(rig.connections(after: start).map(\.1) == [.silent, .connected])
    }

    @Test("garbage costs at most the line it lands in")
    func garbage() {
        let rig = rig()
        rig.run(.milliseconds(2_500))
        let start = rig.now
        rig.inject("garbage")
        rig.run(.seconds(3))
        #expect(rig.samples(after: start).count >= 2)
        #expect(rig.samples(after: start).allSatisfy { $0.isValid })
    }

    @Test("unplug and replug")
    func unplug() {
        let rig = rig()
        rig.run(.milliseconds(1_500))
        let start = rig.now
        rig.unplug()
        rig.run(.seconds(2))
        rig.replug()
        rig.run(.milliseconds(1_500))
        #expect(rig.connections(after: start).map(\.1) == [.disconnected, .connected])
    }

    @Test("staleness edge: one tick under the limit nothing, at the limit .silent (pure session)")
    func stalenessEdge() {
        var session = MasimoSession()
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        let t = MonotonicInstant.origin + .seconds(1)
        session.receive(Array("01/01/25 08:00:00 SPO2=097% BPM=070 PI=03.00% ALARM=0000 EXC=000800\r\n".utf8), at: t, effects: &fx)
        #expect(fx.outputs.count == 2)
        var fx2 = EndpointEffects<OximeterOutput>()
        session.tick(at: t + .milliseconds(2_500) - .nanoseconds(1), effects: &fx2)
        #expect(fx2.outputs.isEmpty)
        session.tick(at: t + .milliseconds(2_500), effects: &fx2)
        #expect(fx2.outputs == [.connection(.silent, at: t + .milliseconds(2_500)), .noData(lastSampleAt: t, at: t + .milliseconds(2_500))])
    }

    @Test("random and truncated bytes never crash or wedge the session; it reads the next valid line")
    func robustness() {
        var random = TestRandom(state: 7)
        var session = MasimoSession()
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        let valid = Array("\r\n09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n".utf8)
        for round in 0..<300 {
            var garbage = random.bytes(random.below(400))
            if round % 3 == 0 { garbage += valid.prefix(random.below(valid.count)) }
            var effects = EndpointEffects<OximeterOutput>()
            session.receive(garbage, at: .origin + .milliseconds(round), effects: &effects)
            var after = EndpointEffects<OximeterOutput>()
            session.receive(valid, at: .origin + .milliseconds(round), effects: &after)
            let samples = after.outputs.compactMap { if case .sample(let s) = $0 { s } else { nil } }
            #expect(samples.last?.spo2 == .percent(97), "round \(round)")
            #expect(samples.last?.perfusionIndex == .percent(11.82))
        }
    }

    @Test("flag mapping table", arguments: [
        (Masimo.ExceptionFlags.noSensor, OximetryQuality.probeOff), (.sensorOff, .probeOff), (.defectiveSensor, .sensorFault),
        (.noCable, .sensorFault), (.lowPerfusion, .lowPerfusion), (.pulseSearch, .searching), (.sensorCalibrating, .searching),
        (.interference, .interference), (.ambientLight, .interference), (.lowSignalIQ, .lowSignalQuality), (.masimoSET, OximetryQuality()),
    ])
    func mapping(_ exception: Masimo.ExceptionFlags, _ quality: OximetryQuality) {
        #expect(MasimoSession.quality(exceptions: exception.union(.masimoSET), alarms: []) == quality)
        #expect(MasimoSession.quality(exceptions: [], alarms: .lowBattery) == .lowBattery)
        #expect(MasimoSession.quality(exceptions: [], alarms: [.spo2Low, .alarmActive]) == [])
    }
}
