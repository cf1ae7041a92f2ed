import Foundation
import InfusionCore

/// The JSON export of a session: one object with everything recorded, keys sorted, units in key names
/// (as in `infusionctl program validate --json`). Absent keys mean "not recorded", never zero. Pure; any thread.
///
/// ```
/// { "format": "infusioncontrol-session", "formatVersion": 1,
///   "session": {id, patientId, operatorId, state, startedAt, endedAt, startedMonotonic_ns, devices: [...]},
///   "program": {library: {name, version, sha256}, profileId, profileName, drug, concentration_mg_per_mL, weight_kg,
///               doseRate_mg_per_kg_per_h, deliveredDoseRate_mg_per_kg_per_h, pumpRate_mL_per_h,
///               pumpRateRequested_mL_per_h, vtbi_mL, duration_s, loading, projectedCumulativeDose_mg_per_kg,
///               cumulativeHardLimit_mg_per_kg, softLimitConfirmation: {reason, confirmedBy}, overriddenFindings,
///               monitoringLimits},
///   "summary": {totalVolume_mL, totalDose_mg, eventCount, sampleCount, pumpStatusCount},
///   "events": [{sequence, sessionTime_s, wallClock, monotonic_ns, kind, channel, ruleId, priority, operatorId,
///               reason, message, details}],
///   "samples": [{sessionTime_s, measuredMonotonic_ns, arrivedMonotonic_ns, spo2_percent, pulse_bpm,
///                perfusionIndex_percent, quality: [names], valid}],
///   "pumpStatuses": [{sessionTime_s, receivedMonotonic_ns, state, rate_mL_per_h, volumeInfused_mL, alarms: [names]}] }
/// ```
/// Wall-clock times are ISO 8601 UTC with milliseconds.
public enum JSONExport {
    /// The export as UTF-8 JSON text (pretty-printed when `pretty`).
    public static func render(_ loaded: LoadedSession, pretty: Bool = true) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Every number comes from the database or a validated program, which hold only finite ones; should one
        // not be, it is written as the string "NaN" or "Infinity" rather than failing the whole export.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        guard let data = try? encoder.encode(Document(loaded)) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The session list as a JSON array (`infusionctl sessions --json`), oldest first; `[]` when empty:
    /// `[{id, state, patientId, operatorId, startedAt, endedAt, drug, profileId, doseRate_mg_per_kg_per_h,
    /// pumpRate_mL_per_h, library: {name, version, sha256}, softLimitOverride, eventCount, alarmCount, sampleCount,
    /// pumpStatusCount}]`. Wall-clock times are ISO 8601 UTC.
    public static func sessionList(_ summaries: [SessionSummary], pretty: Bool = true) -> String {
        if summaries.isEmpty { return "[]" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let items = summaries.map { summary in
            let s = summary.session
            return ListItem(
                id: s.id.rawValue, state: s.state.rawValue, patientId: s.patientID, operatorId: s.operatorID,
                startedAt: ReportText.iso8601(s.startedAt), endedAt: s.endedAt.map(ReportText.iso8601), drug: s.program.drug,
                profileId: s.program.profileID, doseRate_mg_per_kg_per_h: s.program.doseRate.milligramsPerKilogramPerHour,
                pumpRate_mL_per_h: s.program.pumpRate.actual.millilitresPerHour,
                library: Library(name: s.program.libraryName, version: s.program.libraryVersion, sha256: s.program.librarySHA256),
                softLimitOverride: s.program.confirmation != nil, eventCount: summary.eventCount, alarmCount: summary.alarmCount,
                sampleCount: summary.sampleCount, pumpStatusCount: summary.pumpStatusCount)
        }
        guard let data = try? encoder.encode(items) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    struct ListItem: Encodable {
        let id: Int64
        let state: String
        let patientId: String
        let operatorId: String
        let startedAt: String
        let endedAt: String?
        let drug: String
        let profileId: String
        let doseRate_mg_per_kg_per_h: Double
        let pumpRate_mL_per_h: Double
        let library: Library
        let softLimitOverride: Bool
        let eventCount: Int
        let alarmCount: Int
        let sampleCount: Int
        let pumpStatusCount: Int
    }

    struct Document: Encodable {
        let format = "infusioncontrol-session"
        let formatVersion = 1
        let session: Session
        let program: Program
        let summary: Summary
        let events: [Event]
        let samples: [Sample]
        let pumpStatuses: [Status]

        init(_ loaded: LoadedSession) {
            let s = loaded.session
            session = Session(
                id: s.id.rawValue, patientId: s.patientID, operatorId: s.operatorID, state: s.state.rawValue,
                startedAt: ReportText.iso8601(s.startedAt), endedAt: s.endedAt.map(ReportText.iso8601),
                startedMonotonic_ns: s.startedMonotonic.nanoseconds, devices: s.devices)
            program = Program(s.program)
            let series = SessionSeries(loaded)
            summary = Summary(totalVolume_mL: series.totalVolume, totalDose_mg: series.totalDose, eventCount: loaded.events.count,
                              sampleCount: loaded.samples.count, pumpStatusCount: loaded.pumpStatuses.count)
            events = loaded.events.map { e in
                Event(sequence: e.sequence, sessionTime_s: ReportText.seconds(e.offset(in: s)), wallClock: ReportText.iso8601(e.wallClock),
                      monotonic_ns: e.monotonic?.nanoseconds, kind: e.kind.rawValue, channel: e.channel, ruleId: e.ruleID,
                      priority: e.priority?.description, operatorId: e.operatorID, reason: e.reason, message: e.message, details: e.details)
            }
            samples = loaded.samples.map { v in
                Sample(sessionTime_s: ReportText.seconds(v.measuredAt - s.startedMonotonic), measuredMonotonic_ns: v.measuredAt.nanoseconds,
                       arrivedMonotonic_ns: v.arrivedAt.nanoseconds, spo2_percent: v.spo2?.percent, pulse_bpm: v.pulseRate?.beatsPerMinute,
                       perfusionIndex_percent: v.perfusionIndex?.percent, quality: v.quality.names, valid: v.isValid)
            }
            pumpStatuses = loaded.pumpStatuses.map { p in
                Status(sessionTime_s: ReportText.seconds(p.receivedAt - s.startedMonotonic), receivedMonotonic_ns: p.receivedAt.nanoseconds,
                       state: p.state.description, rate_mL_per_h: p.rate?.millilitresPerHour, volumeInfused_mL: p.volumeInfused?.millilitres,
                       alarms: p.alarms.names)
            }
        }
    }

    struct Session: Encodable {
        let id: Int64
        let patientId: String
        let operatorId: String
        let state: String
        let startedAt: String
        let endedAt: String?
        let startedMonotonic_ns: Int64
        let devices: [DeviceDescription]
    }

    struct Library: Encodable {
        let name: String
        let version: String
        let sha256: String
    }

    struct Loading: Encodable {
        let dose_mg_per_kg: Double
        let duration_s: Double
        let pumpRate_mL_per_h: Double
        let pumpRateRequested_mL_per_h: Double
        let volume_mL: Double
    }

    struct Confirmation: Encodable {
        let reason: String
        let confirmedBy: String?
    }

    struct Program: Encodable {
        let library: Library
        let profileId: String
        let profileName: String
        let drug: String
        let concentration_mg_per_mL: Double
        let weight_kg: Double
        let doseRate_mg_per_kg_per_h: Double
        let deliveredDoseRate_mg_per_kg_per_h: Double
        let pumpRate_mL_per_h: Double
        let pumpRateRequested_mL_per_h: Double
        let vtbi_mL: Double
        let duration_s: Double
        let loading: Loading?
        let projectedCumulativeDose_mg_per_kg: Double
        let cumulativeHardLimit_mg_per_kg: Double
        let softLimitConfirmation: Confirmation?
        let overriddenFindings: [RecordedFinding]
        let monitoringLimits: RecordedMonitoringLimits?

        init(_ p: RecordedProgram) {
            library = Library(name: p.libraryName, version: p.libraryVersion, sha256: p.librarySHA256)
            profileId = p.profileID
            profileName = p.profileName
            drug = p.drug
            concentration_mg_per_mL = p.concentration.milligramsPerMillilitre
            weight_kg = p.weight.kilograms
            doseRate_mg_per_kg_per_h = p.doseRate.milligramsPerKilogramPerHour
            deliveredDoseRate_mg_per_kg_per_h = p.deliveredDoseRate.milligramsPerKilogramPerHour
            pumpRate_mL_per_h = p.pumpRate.actual.millilitresPerHour
            pumpRateRequested_mL_per_h = p.pumpRate.requested.millilitresPerHour
            vtbi_mL = p.vtbi.millilitres
            duration_s = p.duration.seconds
            loading = p.loading.map {
                Loading(dose_mg_per_kg: $0.dose.milligramsPerKilogram, duration_s: $0.duration.seconds,
                        pumpRate_mL_per_h: $0.pumpRate.actual.millilitresPerHour,
                        pumpRateRequested_mL_per_h: $0.pumpRate.requested.millilitresPerHour, volume_mL: $0.volume.millilitres)
            }
            projectedCumulativeDose_mg_per_kg = p.projectedCumulativeDose.milligramsPerKilogram
            cumulativeHardLimit_mg_per_kg = p.cumulativeHardLimit.milligramsPerKilogram
            softLimitConfirmation = p.confirmation.map { Confirmation(reason: $0.reason, confirmedBy: $0.confirmedBy) }
            overriddenFindings = p.overriddenFindings
            monitoringLimits = p.monitoringLimits
        }
    }

    struct Summary: Encodable {
        let totalVolume_mL: Double?
        let totalDose_mg: Double?
        let eventCount: Int
        let sampleCount: Int
        let pumpStatusCount: Int
    }

    struct Event: Encodable {
        let sequence: Int64
        let sessionTime_s: Double
        let wallClock: String
        let monotonic_ns: Int64?
        let kind: String
        let channel: String?
        let ruleId: String?
        let priority: String?
        let operatorId: String?
        let reason: String?
        let message: String
        let details: JSONValue?
    }

    struct Sample: Encodable {
        let sessionTime_s: Double
        let measuredMonotonic_ns: Int64
        let arrivedMonotonic_ns: Int64
        let spo2_percent: Double?
        let pulse_bpm: Double?
        let perfusionIndex_percent: Double?
        let quality: [String]
        let valid: Bool
    }

    struct Status: Encodable {
        let sessionTime_s: Double
        let receivedMonotonic_ns: Int64
        let state: String
        let rate_mL_per_h: Double?
        let volumeInfused_mL: Double?
        let alarms: [String]
    }
}
