import Foundation
import InfusionCore
import TOMLKit

/// The guided sequence of an oximeter verification: the set points in order, how long to let the
/// oximeter settle after each change, how long to collect, and the claim.
///
/// Pure value; any thread.
public struct OximeterVerificationPlan: Hashable, Sendable, Codable {
    /// The set points, in the order the technician (or a remote-controlled simulator) applies them.
    public var setPoints: [OximeterSetPoint]
    /// Time after a set point is applied before readings count (default 30 s: oximeter response time
    /// is typically < 30 s, clinical.md §3.3).
    @CodedSeconds public var settlingTime: Duration
    /// How long readings are collected at each set point (default 30 s).
    @CodedSeconds public var collectionWindow: Duration
    /// What the result is judged against.
    public var claim: OximeterClaim

    /// Creates a plan; call `validated()` before use.
    public init(setPoints: [OximeterSetPoint] = OximeterVerificationPlan.defaultSetPoints,
                settlingTime: Duration = .seconds(30), collectionWindow: Duration = .seconds(30),
                claim: OximeterClaim = OximeterClaim()) {
        self.setPoints = setPoints
        self.settlingTime = settlingTime
        self.collectionWindow = collectionWindow
        self.claim = claim
    }

    /// The default sequence: SpO2 70, 75, 80, 85, 90, 95 and 100 % at 75 bpm, then pulse rates 40, 120
    /// and 180 bpm at 97 %: ten points, about ten minutes with the default times.
    public static let defaultSetPoints: [OximeterSetPoint] =
        [70.0, 75, 80, 85, 90, 95, 100].map { OximeterSetPoint(spo2: .percent($0), pulseRate: .beatsPerMinute(75)) }
        + [40.0, 120, 180].map { OximeterSetPoint(spo2: .percent(97), pulseRate: .beatsPerMinute($0)) }

    /// The settling time for the set point at `index` (its own, else the plan's).
    public func settling(at index: Int) -> Duration { setPoints[index].settling ?? settlingTime }

    /// The collection window for the set point at `index` (its own, else the plan's).
    public func window(at index: Int) -> Duration { setPoints[index].window ?? collectionWindow }

    /// The total time of the sequence, not counting the operator's time to apply each point.
    public var totalDuration: Duration {
        setPoints.indices.reduce(Duration.zero) { $0 + settling(at: $1) + window(at: $1) }
    }

    /// The plan if usable: at least one set point, SpO2 within 0...100 %, pulse rate within 20...300 bpm,
    /// settling 0...10 min, windows 1 s...10 min, and a usable claim.
    public func validated() throws(CalibrationInputError) -> OximeterVerificationPlan {
        guard !setPoints.isEmpty else {
            throw CalibrationInputError("the plan has no set points", fix: "add [[point]] tables with spo2 and pulse_rate, or use the defaults")
        }
        for (index, point) in setPoints.enumerated() {
            try Self.check(point, at: index)
        }
        for (name, value) in [("settling time", settlingTime)] where !(value >= .zero && value <= .seconds(600)) {
            throw CalibrationInputError("\(name) \(value.humanReadable) is not within 0...10 min", fix: "use 30 s")
        }
        guard collectionWindow >= .seconds(1), collectionWindow <= .seconds(600) else {
            throw CalibrationInputError("collection window \(collectionWindow.humanReadable) is not within 1 s...10 min", fix: "use 30 s")
        }
        _ = try claim.validated()
        return self
    }

    static func check(_ point: OximeterSetPoint, at index: Int) throws(CalibrationInputError) {
        let name = "set point \(index + 1) (\(point))"
        guard point.spo2.percent.isFinite, (0...100).contains(point.spo2.percent) else {
            throw CalibrationInputError("\(name): SpO2 is not within 0...100 %", fix: "give SpO2 in percent, such as 90")
        }
        guard point.pulseRate.beatsPerMinute.isFinite, (20...300).contains(point.pulseRate.beatsPerMinute) else {
            throw CalibrationInputError("\(name): pulse rate is not within 20...300 bpm", fix: "give the pulse rate in beats per minute, such as 75")
        }
        if let settling = point.settling, !(settling >= .zero && settling <= .seconds(600)) {
            throw CalibrationInputError("\(name): settling \(settling.humanReadable) is not within 0...10 min", fix: "use 30 s")
        }
        if let window = point.window, !(window >= .seconds(1) && window <= .seconds(600)) {
            throw CalibrationInputError("\(name): window \(window.humanReadable) is not within 1 s...10 min", fix: "use 30 s")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case setPoints = "set_points", settlingTime = "settling_s", collectionWindow = "window_s", claim
    }
}

/// Why a set-points file was refused: the file, the line where known, the key, and the fix.
public struct SetPointsFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file (path or a name given by the caller).
    public var file: String
    /// 1-based line, for TOML syntax errors.
    public var line: Int?
    /// The key path (`point[2].spo2`), when one key is at fault.
    public var key: String?
    /// What is wrong and what to do.
    public var problem: CalibrationInputError

    /// A short human-readable form, for logs, messages and reports.
    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let key { location += ": \(key)" }
        return "\(location): \(problem.problem). Fix: \(problem.fix)"
    }
}

extension OximeterVerificationPlan {
    /// Reads a plan from a set-points TOML file's text. Format (every key but `spo2` and `pulse_rate`
    /// optional; durations are strings with a unit, "30 s", "1 min"):
    ///
    /// ```toml
    /// settling = "30 s"            # before each collection window
    /// window = "30 s"              # collection window at each point
    ///
    /// [claim]
    /// arms_max_percent = 4.0       # A_rms limit
    /// spo2_range_percent = [70, 100]
    /// pulse_rate_tolerance_bpm = 3.0
    /// minimum_valid_readings = 10
    ///
    /// [[point]]
    /// spo2 = 90                    # %
    /// pulse_rate = 75              # bpm
    /// settling = "45 s"            # this point only
    /// window = "60 s"
    /// ```
    ///
    /// Unknown keys, wrong types and out-of-range values are errors naming the key. Pure: `source` is
    /// only used in messages.
    public static func load(toml text: String, source: String) throws(SetPointsFileError) -> OximeterVerificationPlan {
        func fail(_ key: String?, _ problem: String, _ fix: String, line: Int? = nil) -> SetPointsFileError {
            SetPointsFileError(file: source, line: line, key: key, problem: CalibrationInputError(problem, fix: fix))
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw fail(nil, "not valid TOML: \(error.description)", "correct the syntax at that line", line: error.source.begin.line)
        } catch {
            throw fail(nil, "not valid TOML: \(error)", "correct the file's syntax")
        }
        func unknownKeys(_ table: TOMLTable, allowed: Set<String>, path: String) throws(SetPointsFileError) {
            for key in table.keys.sorted() where !allowed.contains(key) {
                let name = path.isEmpty ? key : "\(path).\(key)"
                throw fail(name, "unknown key \"\(key)\"", "use one of: \(allowed.sorted().joined(separator: ", "))")
            }
        }
        func number(_ table: TOMLTable, _ key: String, path: String) throws(SetPointsFileError) -> Double? {
            guard let value = table[key] else { return nil }
            if let int = value.int { return Double(int) }
            if let double = value.double, double.isFinite { return double }
            throw fail("\(path)\(key)", "\"\(key)\" must be a number, not a \(value.type)", "write a plain number such as 90")
        }
        func duration(_ table: TOMLTable, _ key: String, path: String) throws(SetPointsFileError) -> Duration? {
            guard let value = table[key] else { return nil }
            guard let text = value.string else {
                throw fail("\(path)\(key)", "\"\(key)\" must be a string with a unit", "write it like \"30 s\" or \"1 min\"")
            }
            do {
                return try Duration.parse(text)
            } catch {
                throw fail("\(path)\(key)", error.description, "write it like \"30 s\" or \"1 min\"")
            }
        }

        try unknownKeys(root, allowed: ["settling", "window", "claim", "point"], path: "")
        var plan = OximeterVerificationPlan(setPoints: [])
        if let settling = try duration(root, "settling", path: "") { plan.settlingTime = settling }
        if let window = try duration(root, "window", path: "") { plan.collectionWindow = window }

        if let value = root["claim"] {
            guard let claim = value.table else { throw fail("claim", "\"claim\" must be a table", "write it as [claim]") }
            try unknownKeys(claim, allowed: ["arms_max_percent", "spo2_range_percent", "pulse_rate_tolerance_bpm", "minimum_valid_readings"], path: "claim")
            if let arms = try number(claim, "arms_max_percent", path: "claim.") { plan.claim.armsLimit = .percent(arms) }
            if let tolerance = try number(claim, "pulse_rate_tolerance_bpm", path: "claim.") { plan.claim.pulseRateTolerance = .beatsPerMinute(tolerance) }
            if let minimum = claim["minimum_valid_readings"] {
                guard let count = minimum.int else {
                    throw fail("claim.minimum_valid_readings", "\"minimum_valid_readings\" must be a whole number", "write it like 10")
                }
                plan.claim.minimumValidReadings = count
            }
            if let range = claim["spo2_range_percent"] {
                let bounds = range.array.map { array in array.compactMap { $0.int.map(Double.init) ?? $0.double } } ?? []
                guard bounds.count == 2, bounds[0] < bounds[1] else {
                    throw fail("claim.spo2_range_percent", "\"spo2_range_percent\" must be two increasing numbers", "write it like [70, 100]")
                }
                plan.claim.claimRange = bounds[0]...bounds[1]
            }
            do {
                plan.claim = try plan.claim.validated()
            } catch {
                throw fail("claim", error.problem, error.fix)
            }
        }

        guard let pointsValue = root["point"] else {
            throw fail("point", "no [[point]] tables", "add at least one [[point]] with spo2 and pulse_rate")
        }
        guard let points = pointsValue.array else {
            throw fail("point", "\"point\" must be an array of tables", "write each one as [[point]]")
        }
        for (index, element) in points.enumerated() {
            let path = "point[\(index)]"
            guard let table = element.table else {
                throw fail(path, "each point must be a table", "write each one as [[point]]")
            }
            try unknownKeys(table, allowed: ["spo2", "pulse_rate", "settling", "window"], path: path)
            guard let spo2 = try number(table, "spo2", path: "\(path).") else {
                throw fail("\(path).spo2", "missing \"spo2\"", "add spo2 = <percent>")
            }
            guard let rate = try number(table, "pulse_rate", path: "\(path).") else {
                throw fail("\(path).pulse_rate", "missing \"pulse_rate\"", "add pulse_rate = <bpm>")
            }
            let point = OximeterSetPoint(spo2: .percent(spo2), pulseRate: .beatsPerMinute(rate),
                                         settling: try duration(table, "settling", path: "\(path)."),
                                         window: try duration(table, "window", path: "\(path)."))
            do {
                try check(point, at: index)
            } catch {
                throw fail(path, error.problem, error.fix)
            }
            plan.setPoints.append(point)
        }
        do {
            return try plan.validated()
        } catch {
            throw fail(nil, error.problem, error.fix)
        }
    }
}
