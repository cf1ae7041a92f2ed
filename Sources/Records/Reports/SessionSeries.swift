import Foundation
import InfusionCore

/// The time series and figures a report draws, derived from a loaded session. Pure; any thread.
///
/// Times are offsets from the session's start on its monotonic clock. The cumulative volume is taken from
/// the pump's own volume counter, counted from the first pump status of the session; when the counter goes
/// down (the pump cleared it, say after a restart), the volume before the drop is kept and counting goes on
/// from the new value. Dose = volume × concentration.
public struct SessionSeries: Sendable {
    /// A point of a series: offset from the start, value.
    public struct Point: Hashable, Sendable {
        /// Offset from the session's start.
        public var offset: Duration
        /// The value, in the series' unit.
        public var value: Double
    }

    /// A time span (start and end offsets).
    public struct Span: Hashable, Sendable {
        /// Where it starts.
        public var start: Duration
        /// Where it ends.
        public var end: Duration
    }

    /// The session's end or its last record, whichever is later.
    public let lastRecord: Duration
    /// The end of the time axis: `lastRecord`, but at least one minute.
    public let end: Duration
    /// SpO2 (%) of valid samples.
    public let spo2: [Point]
    /// Pulse rate (bpm) of valid samples.
    public let pulse: [Point]
    /// Spans without valid oximetry: invalid samples (probe off, searching…) or no sample for more than 5 s.
    public let invalidOximetry: [Span]
    /// The rate the pump delivers (mL/h): its reported rate while infusing, 0 while stopped or paused; a step
    /// function, one point per change. Unknown states are left out.
    public let pumpRate: [Point]
    /// Cumulative volume infused (mL), from the pump's counter.
    public let cumulativeVolume: [Point]
    /// Cumulative dose (mg): volume × concentration.
    public let cumulativeDose: [Point]
    /// Lowest and highest valid SpO2, when any.
    public let spo2Range: ClosedRange<Double>?
    /// Lowest and highest valid pulse rate, when any.
    public let pulseRange: ClosedRange<Double>?

    /// Total volume infused (mL), when the pump reported its counter.
    public var totalVolume: Double? { cumulativeVolume.last?.value }
    /// Total dose (mg), when known.
    public var totalDose: Double? { cumulativeDose.last?.value }

    /// Derives the series of a loaded session.
    public init(_ loaded: LoadedSession) {
        let session = loaded.session
        let origin = session.startedMonotonic
        var spo2: [Point] = [], pulse: [Point] = [], invalid: [Span] = []
        spo2.reserveCapacity(loaded.samples.count)
        pulse.reserveCapacity(loaded.samples.count)
        var invalidStart: Duration?
        var previous: Duration?
        let gap = Duration.seconds(5)
        for sample in loaded.samples {
            let t = sample.measuredAt - origin
            if sample.isValid {
                if let start = invalidStart {
                    invalid.append(Span(start: start, end: t))
                    invalidStart = nil
                } else if let previous, t - previous > gap {
                    invalid.append(Span(start: previous, end: t))
                }
                if let value = sample.spo2?.percent { spo2.append(Point(offset: t, value: value)) }
                if let value = sample.pulseRate?.beatsPerMinute { pulse.append(Point(offset: t, value: value)) }
            } else if invalidStart == nil {
                invalidStart = previous.map { t - $0 > gap ? $0 : t } ?? t
            }
            previous = t
        }

        var rate: [Point] = [], volume: [Point] = [], dose: [Point] = []
        var baseline: Double?, offset = 0.0, lastCounter: Double?
        let concentration = session.program.concentration.milligramsPerMillilitre
        for status in loaded.pumpStatuses {
            let t = status.receivedAt - origin
            let delivered: Double? = switch status.state {
            case .infusing: status.rate?.millilitresPerHour
            case .stopped, .paused: 0
            case .withdrawing, .purging, .unknown: nil
            }
            if let delivered, rate.last?.value != delivered { rate.append(Point(offset: t, value: delivered)) }
            if let counter = status.volumeInfused?.millilitres, counter.isFinite {
                if baseline == nil { baseline = counter }
                if let last = lastCounter, counter < last - 1e-9 { offset += last }
                lastCounter = counter
                let total = max(0, offset + counter - (baseline ?? 0))
                volume.append(Point(offset: t, value: total))
                dose.append(Point(offset: t, value: total * concentration))
            }
        }
        if let start = invalidStart, let previous { invalid.append(Span(start: start, end: previous)) }

        var last = Duration.zero
        if let ended = session.endedAt {
            last = max(last, .milliseconds(Int64((ended.timeIntervalSince(session.startedAt) * 1000).rounded())))
        }
        for offset in [spo2.last?.offset, pulse.last?.offset, rate.last?.offset, volume.last?.offset, loaded.samples.last.map { $0.measuredAt - origin }] {
            if let offset { last = max(last, offset) }
        }
        // Events written by a later process (recovery) have no monotonic time; they do not stretch the axis.
        for event in loaded.events where event.monotonic != nil { last = max(last, event.offset(in: session)) }
        if let final = rate.last, final.offset < last { rate.append(Point(offset: last, value: final.value)) }
        let end = max(last, .seconds(60))

        self.lastRecord = last
        self.end = end
        self.spo2 = spo2
        self.pulse = pulse
        self.invalidOximetry = invalid
        self.pumpRate = rate
        self.cumulativeVolume = volume
        self.cumulativeDose = dose
        spo2Range = spo2.isEmpty ? nil : (spo2.map(\.value).min() ?? 0)...(spo2.map(\.value).max() ?? 0)
        pulseRange = pulse.isEmpty ? nil : (pulse.map(\.value).min() ?? 0)...(pulse.map(\.value).max() ?? 0)
    }
}
