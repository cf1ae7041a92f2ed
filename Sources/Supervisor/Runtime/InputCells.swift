import InfusionCore
import Synchronization

/// Six words published together under a sequence counter (a seqlock): one writer, any number of
/// readers, no locks, no allocation. The payload is stored as atomics with relaxed ordering and
/// framed by the counter's release/acquire ordering and fences (Boehm's seqlock), so there is no data
/// race in the Swift memory model.
final class SeqlockWords: @unchecked Sendable {
    // @unchecked: every stored property is an `Atomic`; the protocol is described above.
    private let sequence = Atomic<UInt64>(0)
    private let w0 = Atomic<UInt64>(0), w1 = Atomic<UInt64>(0), w2 = Atomic<UInt64>(0)
    private let w3 = Atomic<UInt64>(0), w4 = Atomic<UInt64>(0), w5 = Atomic<UInt64>(0)
    private let failedReads = Atomic<Int>(0)

    /// The payload of one publication.
    struct Words: Hashable, Sendable {
        var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0, w4: UInt64 = 0, w5: UInt64 = 0
    }

    /// Single writer only. Publishes `words`.
    func write(_ words: Words) {
        let s = sequence.load(ordering: .relaxed)
        sequence.store(s &+ 1, ordering: .relaxed) // odd: write in progress
        atomicMemoryFence(ordering: .releasing)
        w0.store(words.w0, ordering: .relaxed)
        w1.store(words.w1, ordering: .relaxed)
        w2.store(words.w2, ordering: .relaxed)
        w3.store(words.w3, ordering: .relaxed)
        w4.store(words.w4, ordering: .relaxed)
        w5.store(words.w5, ordering: .relaxed)
        sequence.store(s &+ 2, ordering: .releasing) // even: consistent
    }

    /// Any thread. The latest consistent publication and its sequence number, or nil when nothing has
    /// been published or no consistent copy could be read in `attempts` tries (the writer was
    /// mid-write each time: bounded, so a preempted writer can never stall the reader).
    func read(attempts: Int = 16) -> (words: Words, sequence: UInt64)? {
        for _ in 0..<attempts {
            let s1 = sequence.load(ordering: .acquiring)
            if s1 == 0 { return nil }
            if s1 & 1 == 1 { continue }
            let words = Words(w0: w0.load(ordering: .relaxed), w1: w1.load(ordering: .relaxed), w2: w2.load(ordering: .relaxed),
                              w3: w3.load(ordering: .relaxed), w4: w4.load(ordering: .relaxed), w5: w5.load(ordering: .relaxed))
            atomicMemoryFence(ordering: .acquiring)
            if sequence.load(ordering: .relaxed) == s1 { return (words, s1) }
        }
        failedReads.wrappingAdd(1, ordering: .relaxed)
        return nil
    }

    /// Sequence number of the latest publication (0: none). Any thread.
    var currentSequence: UInt64 { sequence.load(ordering: .acquiring) }

    /// Reads that gave up because the writer was mid-write every time.
    var contendedReads: Int { failedReads.load(ordering: .relaxed) }
}

/// The latest vital-sign sample of one oximeter, published by its driver and read by the supervisor's
/// real-time thread without locks or allocation. Also carries the oximeter link's state.
///
/// Threads: exactly ONE publisher thread (the oximeter driver's) may call `publish` and
/// `publishConnection`; any thread may read. Each publication also wakes the supervisor at once (when the
/// cell belongs to a running `SupervisorRunner`), so a stop-worthy sample never waits for the next tick.
public final class VitalSampleCell: Sendable {
    private let words = SeqlockWords()
    private let connection = Atomic<UInt8>(DeviceConnection.disconnected.rawValue)
    private let wakeup: Wakeup?

    /// A cell; `wakeup` is signalled after every publication (nil: no wake-up, for tests).
    public init(wakeup: Wakeup? = nil) { self.wakeup = wakeup }

    /// Publisher thread only. Makes `sample` the latest and wakes the supervisor. No allocation.
    public func publish(_ sample: VitalSample) {
        words.write(Self.encode(sample))
        wakeup?.signal()
    }

    /// Publisher thread only. Sets the oximeter link's state and wakes the supervisor.
    public func publishConnection(_ state: DeviceConnection) {
        connection.store(state.rawValue, ordering: .releasing)
        wakeup?.signal()
    }

    /// Any thread. The latest sample, or nil when none has been published (or the read was contended).
    public func read() -> VitalSample? { words.read().map { Self.decode($0.words) } }

    /// Any thread. The oximeter link's latest state (`.disconnected` until published).
    public var linkState: DeviceConnection { DeviceConnection(rawValue: connection.load(ordering: .acquiring)) ?? .disconnected }

    /// Publications so far (0: none). Any thread.
    public var publications: UInt64 { words.currentSequence / 2 }

    static func encode(_ s: VitalSample) -> SeqlockWords.Words {
        var flags: UInt64 = UInt64(s.quality.rawValue)
        if s.spo2 != nil { flags |= 1 << 32 }
        if s.pulseRate != nil { flags |= 1 << 33 }
        if s.perfusionIndex != nil { flags |= 1 << 34 }
        return SeqlockWords.Words(
            w0: UInt64(bitPattern: s.arrivedAt.nanoseconds), w1: UInt64(bitPattern: s.measuredAt.nanoseconds),
            w2: (s.spo2?.percent ?? 0).bitPattern, w3: (s.pulseRate?.beatsPerMinute ?? 0).bitPattern,
            w4: (s.perfusionIndex?.percent ?? 0).bitPattern, w5: flags)
    }

    static func decode(_ w: SeqlockWords.Words) -> VitalSample {
        VitalSample(
            arrivedAt: MonotonicInstant(nanoseconds: Int64(bitPattern: w.w0)),
            measuredAt: MonotonicInstant(nanoseconds: Int64(bitPattern: w.w1)),
            spo2: w.w5 & (1 << 32) != 0 ? .percent(Double(bitPattern: w.w2)) : nil,
            pulseRate: w.w5 & (1 << 33) != 0 ? .beatsPerMinute(Double(bitPattern: w.w3)) : nil,
            perfusionIndex: w.w5 & (1 << 34) != 0 ? .percent(Double(bitPattern: w.w4)) : nil,
            quality: OximetryQuality(rawValue: UInt32(truncatingIfNeeded: w.w5)))
    }
}

/// The latest status of one pump, published by its driver and read by the supervisor's real-time
/// thread without locks or allocation. Also carries the pump link's state and whether the pump's own
/// communication watchdog is armed.
///
/// Threads: exactly ONE publisher thread (the pump driver's) may call the `publish…` methods; any
/// thread may read. Each publication wakes the supervisor at once (stop confirmations count).
public final class PumpStatusCell: Sendable {
    private let words = SeqlockWords()
    private let connection = Atomic<UInt8>(DeviceConnection.disconnected.rawValue)
    private let watchdog = Atomic<Bool>(false)
    private let wakeup: Wakeup?

    /// A cell; `wakeup` is signalled after every publication (nil: no wake-up, for tests).
    public init(wakeup: Wakeup? = nil) { self.wakeup = wakeup }

    /// Publisher thread only. Makes `status` the latest and wakes the supervisor. No allocation.
    public func publish(_ status: PumpStatus) {
        words.write(Self.encode(status))
        wakeup?.signal()
    }

    /// Publisher thread only. Sets the pump link's state and wakes the supervisor.
    public func publishConnection(_ state: DeviceConnection) {
        connection.store(state.rawValue, ordering: .releasing)
        wakeup?.signal()
    }

    /// Publisher thread only. Says whether the pump's own communication watchdog is armed (New Era
    /// safe mode, Alaris lease, Fresenius keep-alive), as the driver last confirmed it.
    public func publishWatchdogArmed(_ armed: Bool) {
        watchdog.store(armed, ordering: .releasing)
        wakeup?.signal()
    }

    /// Any thread. The latest status, or nil when none has been published (or the read was contended).
    public func read() -> PumpStatus? { words.read().map { Self.decode($0.words) } }

    /// Any thread. The pump link's latest state (`.disconnected` until published).
    public var linkState: DeviceConnection { DeviceConnection(rawValue: connection.load(ordering: .acquiring)) ?? .disconnected }

    /// Any thread. Whether the pump's watchdog is armed (false until published).
    public var watchdogArmed: Bool { watchdog.load(ordering: .acquiring) }

    /// Publications so far (0: none). Any thread.
    public var publications: UInt64 { words.currentSequence / 2 }

    static func encode(_ p: PumpStatus) -> SeqlockWords.Words {
        var flags = UInt64(p.state.rawValue) | UInt64(p.alarms.rawValue) << 32
        if p.rate != nil { flags |= 1 << 8 }
        if p.volumeInfused != nil { flags |= 1 << 9 }
        return SeqlockWords.Words(
            w0: UInt64(bitPattern: p.receivedAt.nanoseconds), w1: flags,
            w2: (p.rate?.millilitresPerHour ?? 0).bitPattern, w3: (p.volumeInfused?.millilitres ?? 0).bitPattern)
    }

    static func decode(_ w: SeqlockWords.Words) -> PumpStatus {
        PumpStatus(
            receivedAt: MonotonicInstant(nanoseconds: Int64(bitPattern: w.w0)),
            state: PumpRunState(rawValue: UInt8(truncatingIfNeeded: w.w1)) ?? .unknown,
            rate: w.w1 & (1 << 8) != 0 ? .millilitresPerHour(Double(bitPattern: w.w2)) : nil,
            volumeInfused: w.w1 & (1 << 9) != 0 ? .millilitres(Double(bitPattern: w.w3)) : nil,
            alarms: PumpAlarms(rawValue: UInt32(truncatingIfNeeded: w.w1 >> 32)))
    }
}
