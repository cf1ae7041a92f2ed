import Foundation
import InfusionCore

/// Renders calibration and verification records as a self-contained HTML page (inline CSS and SVG
/// charts, no scripts, no external resources: it can be archived, e-mailed and printed) and as CSV.
///
/// Pure functions of the record; any thread. Dates are printed in UTC.
public enum CalibrationReport {
    // MARK: - Pump calibration

    /// The HTML report of a pump calibration: verdict, identity, liquid, method, results, the trumpet plot
    /// (E_p max and min against window length with the claimed accuracy and the overall error), the flow
    /// against time with the analysis period shaded, findings, and the raw samples.
    public static func html(_ record: PumpCalibrationRecord) -> String {
        let run = record.run
        let plan = run.plan
        let method = plan.method
        var body: [String] = []
        body.append("<h1>Infusion pump accuracy: gravimetric calibration</h1>")
        body.append(verdictBlock(run.verdict))
        var identity: [(String, String)] = [
            ("Pump", record.pump.label),
            ("Balance", record.balance?.label ?? "not identified"),
            ("Operator", record.operatorName),
            ("Date", dateText(record.performedAt)),
            ("Record id", record.id.uuidString),
        ]
        if let notes = record.notes, !notes.isEmpty { identity.append(("Notes", notes)) }
        body.append(section("Device and operator", table(identity)))
        let liquid = record.liquid
        body.append(section("Test liquid", table([
            ("Liquid", liquid.name),
            ("Temperature", liquid.temperatureCelsius.map { "\(Fixed.text($0, 1)) °C" } ?? "not measured"),
            ("Density", "\(liquid.density) (\(liquid.densitySource))"),
            ("Evaporation correction", plan.evaporation == .none ? "none" : "\(Fixed.text(plan.evaporation.gramsPerHour, 4)) g/h added back"),
        ])))
        body.append(section("Method", table([
            ("Set rate", plan.setRate.formatted(fractionDigits: 3)),
            ("Mode", modeText(method)),
            ("Sampling interval Δt", method.samplingInterval.humanReadable),
            ("Run duration", method.duration.humanReadable),
            ("Analysis period", "\(method.analysisStart.humanReadable) – \(method.analysisEnd.humanReadable) after pump start"),
            ("Observation windows", method.observationWindowSizes.map { "\(minutesText($0.actual)) min (p = \($0.intervals))" }.joined(separator: ", ")),
            ("Weighing", plan.weighing == .immediate ? "immediate (SI)" : "stable (S)"),
            ("Unstable readings", method.unstableReadings == .flag ? "used and counted" : "treated as missing"),
            ("Claim", claimText(plan.claim)),
        ])))
        if let interruption = run.interruption {
            body.append(section("Interruption", table([
                ("When", "\(interruption.elapsed.humanReadable) after the start, during \(interruption.phase)"),
                ("Reason", interruption.reason),
                ("By", interruption.requestedByOperator ? "operator" : "fault"),
            ])))
        }
        if let result = run.result {
            let analysis = result.analysis
            body.append(section("Results", table([
                ("Overall volume error", "\(Fixed.signed(analysis.overallError.percent, 2)) % (claim ±\(Fixed.text(result.claim.overallTolerance.percent, 2)) %)"),
                ("Mean flow", "\(Fixed.text(analysis.meanFlow.millilitresPerHour, 3)) mL/h (set \(Fixed.text(plan.setRate.millilitresPerHour, 3)) mL/h)"),
                ("Delivered volume", "\(Fixed.text(analysis.deliveredVolume.millilitres, 3)) mL from \(analysis.analysedFrom.humanReadable) to \(analysis.analysedTo.humanReadable)"),
                ("Samples", "\(run.samples.count) taken, \(analysis.counts.missingInRun) without a weight (\(analysis.counts.missingInAnalysis) of \(analysis.counts.expectedInAnalysis) in the analysis period), \(analysis.counts.dynamicUsed) dynamic used, \(analysis.counts.dynamicSkipped) dynamic skipped"),
            ]) + trumpetTable(analysis)))
            body.append(section("Trumpet curve", "<figure>\(trumpetSVG(analysis, claim: result.claim))</figure>"))
        } else {
            body.append(section("Results", "<p class=\"muted\">No accuracy result: \(HTML.escape(run.isIncomplete ? "the run is incomplete" : "the data could not be analysed")). The samples taken are listed below.</p>"))
        }
        body.append(section("Flow against time", "<figure>\(flowSVG(run))</figure>"))
        let findings = run.result?.analysis.findings ?? []
        if !findings.isEmpty {
            body.append(section("Findings", "<ul>" + findings.map { "<li class=\"\($0.severity.rawValue)\"><b>\($0.severity.rawValue)</b>: \(HTML.escape($0.message))</li>" }.joined() + "</ul>"))
        }
        body.append(section("Raw samples", samplesTable(run)))
        body.append(section("How the numbers are computed", """
            <p>Q<sub>i</sub> = (W<sub>i</sub> − W<sub>i−1</sub>) / (ρ Δt) for each sampling interval, with W the balance weight \
            (plus the evaporation correction) and ρ the liquid density. Overall error A = 100 (Q̄ − r) / r over the analysis \
            period, Q̄ the mean flow and r the set rate. Trumpet curve (IEC 60601-2-24): for an observation window of p × Δt, \
            E<sub>p</sub>(max) and E<sub>p</sub>(min) are the largest and smallest of (100 / p) Σ (Q<sub>i</sub> − r) / r over \
            every run of p consecutive intervals in the analysis period. Missing weights are never filled in: intervals and \
            windows that need them are left out and counted.</p>
            """ + (method.mode == .quick ? "<p class=\"warn\">Quick mode is a routine check, not the IEC 60601-2-24 method: a 30-minute run analysed over minutes 10–30 with the windows that fit (no 31-minute window). Its result is indicative only.</p>" : "")))
        return page(title: "Pump calibration \(record.pump.serialNumber) \(run.verdict.outcome)", body: body)
    }

    /// The trumpet plot as an SVG element: E_p(max) and E_p(min) against the observation window (min),
    /// the claimed accuracy ±tolerance, any trumpet limits, the overall error line and zero.
    public static func trumpetSVG(_ analysis: PumpAccuracyAnalysis, claim: PumpAccuracyClaim) -> String {
        let points = analysis.trumpet
        let xs = points.map { $0.window.actual.minutes }
        let tolerance = claim.overallTolerance.percent
        let values = points.flatMap { [$0.maximumError?.percent, $0.minimumError?.percent].compactMap { $0 } }
            + claim.trumpetLimits.flatMap { [$0.limit.percent, -$0.limit.percent] } + [tolerance, -tolerance, analysis.overallError.percent]
        let extent = (values.map(abs).max() ?? tolerance) * 1.25
        let nice = SVGChart.niceTicks(0...extent, count: 4)
        let top = nice.last.map { $0 >= extent ? $0 : $0 + (nice.count > 1 ? nice[1] - nice[0] : extent) } ?? extent
        let maxWindow = xs.max() ?? 31
        var chart = SVGChart(title: "Trumpet curve, \(analysis.setRate.formatted(fractionDigits: 3))",
                             xLabel: "observation window p × Δt (min)", yLabel: "deviation from set rate (%)",
                             xRange: 0...(maxWindow + max(1, maxWindow * 0.06)), yRange: -top...top)
        chart.xTicks = [0] + xs
        chart.series.append(.init(name: "Ep(max)", colour: "#c0392b", points: points.map { ($0.window.actual.minutes, $0.maximumError?.percent) }, markers: true))
        chart.series.append(.init(name: "Ep(min)", colour: "#2166ac", points: points.map { ($0.window.actual.minutes, $0.minimumError?.percent) }, markers: true))
        let limits = claim.trumpetLimits.sorted { $0.window < $1.window }
        if !limits.isEmpty {
            chart.series.append(.init(name: "trumpet limits", colour: "#e08214", points: limits.map { ($0.window.minutes, $0.limit.percent) }, markers: true, dash: "5 3"))
            chart.series.append(.init(name: "trumpet limits", colour: "#e08214", points: limits.map { ($0.window.minutes, -$0.limit.percent) }, markers: true, dash: "5 3", inLegend: false))
        }
        chart.references = [
            .init(y: 0, label: "zero", colour: "#333", dash: nil, inLegend: false),
            .init(y: tolerance, label: "claimed accuracy ±\(Fixed.text(tolerance, 1)) %", colour: "#777", dash: "6 4"),
            .init(y: -tolerance, label: "", colour: "#777", dash: "6 4", inLegend: false),
            .init(y: analysis.overallError.percent, label: "overall error A = \(Fixed.signed(analysis.overallError.percent, 2)) %", colour: "#1a9850", dash: "2 3"),
        ]
        return chart.render()
    }

    /// The flow-against-time chart as an SVG element: Q_i, the set rate with its ±tolerance, the mean
    /// flow over the analysis period, and the analysis period shaded.
    public static func flowSVG(_ run: PumpCalibrationRun) -> String {
        let plan = run.plan
        let method = plan.method
        let rate = plan.setRate.millilitresPerHour
        let tolerance = plan.claim.overallTolerance.percent / 100
        let flows = run.flow.compactMap { $0.flow?.millilitresPerHour }
        var chart = SVGChart(title: "Flow Q\u{1D62} per interval (Δt = \(method.samplingInterval.humanReadable))",
                             xLabel: "time since pump start (min)", yLabel: "flow (mL/h)",
                             xRange: 0...max(1, method.duration.minutes),
                             yRange: SVGChart.paddedRange(flows, including: [rate * (1 - tolerance) * 0.98, rate * (1 + tolerance) * 1.02]))
        chart.bands = [.init(from: method.analysisStart.minutes, to: method.analysisEnd.minutes, label: "analysis period", colour: "#fff4cc")]
        chart.series.append(.init(name: "Qi", colour: "#2166ac", points: run.flow.map { ($0.end.minutes, $0.flow?.millilitresPerHour) }, width: 1.3))
        chart.references = [
            .init(y: rate, label: "set rate \(Fixed.text(rate, 3)) mL/h", colour: "#111", dash: "6 4"),
            .init(y: rate * (1 + tolerance), label: "±\(Fixed.text(tolerance * 100, 1)) %", colour: "#999", dash: "2 3"),
            .init(y: rate * (1 - tolerance), label: "", colour: "#999", dash: "2 3", inLegend: false),
        ]
        if let mean = run.result?.analysis.meanFlow.millilitresPerHour {
            chart.references.append(.init(y: mean, label: "mean over analysis \(Fixed.text(mean, 3)) mL/h", colour: "#1a9850", dash: "8 3"))
        }
        return chart.render()
    }

    /// The raw samples as CSV: `sample,scheduled_s,elapsed_s,grams,stable,problem,flow_mL_h` where
    /// `flow_mL_h` is Q of the interval ending at that sample. Missing values are empty fields, never 0.
    public static func samplesCSV(_ record: PumpCalibrationRecord) -> String {
        let run = record.run
        let flowByEnd = Dictionary(run.flow.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        var lines = [CSV.row(["sample", "scheduled_s", "elapsed_s", "grams", "stable", "problem", "flow_mL_h"])]
        for sample in run.samples {
            lines.append(CSV.row([
                String(sample.index),
                Fixed.text(run.plan.method.scheduledTime(ofSample: sample.index).seconds, 3),
                Fixed.text(sample.elapsed.seconds, 3),
                sample.grams.map { Fixed.text($0, 6) } ?? "",
                sample.grams == nil ? "" : (sample.isStable ? "1" : "0"),
                CSV.text(sample.problem?.label ?? ""),
                flowByEnd[sample.index]?.flow.map { Fixed.text($0.millilitresPerHour, 4) } ?? "",
            ]))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The results as CSV, one row per quantity: `item,window_min,p,windows,excluded_windows,value,unit`
    /// (overall error, mean flow, delivered volume, E_p max and min per window, verdict, incomplete flag).
    public static func resultsCSV(_ record: PumpCalibrationRecord) -> String {
        let run = record.run
        var lines = [CSV.row(["item", "window_min", "p", "windows", "excluded_windows", "value", "unit"])]
        lines.append(CSV.row(["pump_serial", "", "", "", "", CSV.text(record.pump.serialNumber), ""]))
        lines.append(CSV.row(["operator", "", "", "", "", CSV.text(record.operatorName), ""]))
        lines.append(CSV.row(["performed_at", "", "", "", "", dateText(record.performedAt), ""]))
        lines.append(CSV.row(["set_rate", "", "", "", "", Fixed.text(run.plan.setRate.millilitresPerHour, 4), "mL/h"]))
        lines.append(CSV.row(["density", "", "", "", "", Fixed.text(run.plan.density.gramsPerMillilitre, 6), "g/mL"]))
        if let analysis = run.result?.analysis {
            lines.append(CSV.row(["overall_error", "", "", "", "", Fixed.text(analysis.overallError.percent, 4), "%"]))
            lines.append(CSV.row(["mean_flow", "", "", "", "", Fixed.text(analysis.meanFlow.millilitresPerHour, 4), "mL/h"]))
            lines.append(CSV.row(["delivered_volume", "", "", "", "", Fixed.text(analysis.deliveredVolume.millilitres, 4), "mL"]))
            for point in analysis.trumpet {
                let common = [NumberTextShort.format(point.window.actual.minutes), String(point.window.intervals), String(point.windowCount), String(point.excludedWindows)]
                lines.append(CSV.row(["ep_max"] + common + [point.maximumError.map { Fixed.text($0.percent, 4) } ?? "", "%"]))
                lines.append(CSV.row(["ep_min"] + common + [point.minimumError.map { Fixed.text($0.percent, 4) } ?? "", "%"]))
            }
        }
        lines.append(CSV.row(["verdict", "", "", "", "", run.verdict.outcome.rawValue, ""]))
        lines.append(CSV.row(["incomplete", "", "", "", "", run.isIncomplete ? "1" : "0", ""]))
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Oximeter verification

    /// The HTML report of an oximeter verification: verdict, identity, claim, a per-set-point table
    /// (readings, exclusions, mean, bias, pulse-rate error), A_rms, and a bias chart.
    public static func html(_ record: OximeterVerificationRecord) -> String {
        let run = record.run
        var body: [String] = ["<h1>Pulse oximeter verification against an SpO2 simulator</h1>", verdictBlock(run.verdict)]
        var identity: [(String, String)] = [
            ("Oximeter", record.oximeter.label),
            ("Simulator", record.simulator?.label ?? "not identified"),
            ("Operator", record.operatorName),
            ("Date", dateText(record.performedAt)),
            ("Record id", record.id.uuidString),
        ]
        if let notes = record.notes, !notes.isEmpty { identity.append(("Notes", notes)) }
        body.append(section("Device and operator", table(identity)))
        let claim = run.plan.claim
        body.append(section("Plan", table([
            ("Set points", "\(run.plan.setPoints.count)"),
            ("Settling / window", "\(run.plan.settlingTime.humanReadable) / \(run.plan.collectionWindow.humanReadable) (unless set per point)"),
            ("Claim", "A_rms ≤ \(Fixed.text(claim.armsLimit.percent, 2)) % over \(NumberTextShort.format(claim.claimRange.lowerBound))–\(NumberTextShort.format(claim.claimRange.upperBound)) %, pulse rate ±\(Fixed.text(claim.pulseRateTolerance.beatsPerMinute, 1)) bpm, ≥ \(claim.minimumValidReadings) valid readings per point"),
        ])))
        if let interruption = run.interruption {
            body.append(section("Interruption", table([
                ("When", "\(interruption.elapsed.humanReadable) after the start, during \(interruption.phase)"),
                ("Reason", interruption.reason),
            ])))
        }
        if let result = run.result {
            let analysis = result.analysis
            body.append(section("Results", table([
                ("A_rms", analysis.arms.map { "\(Fixed.text($0.percent, 2)) % over \(analysis.armsPairs) readings" } ?? "not computable"),
                ("Mean bias", analysis.meanBias.map { "\(Fixed.signed($0.percent, 2)) %" } ?? "–"),
                ("Largest pulse-rate error", analysis.maximumPulseRateError.map { "\(Fixed.text($0.beatsPerMinute, 1)) bpm" } ?? "–"),
                ("Excluded readings", "\(analysis.excludedReadings) (no SpO2 or flagged; never counted as 0)"),
            ]) + pointsTable(analysis)))
            body.append(section("Bias at each set point", "<figure>\(biasSVG(analysis, claim: result.claim))</figure>"))
            if !analysis.findings.isEmpty {
                body.append(section("Findings", "<ul>" + analysis.findings.map { "<li>\(HTML.escape($0.message))</li>" }.joined() + "</ul>"))
            }
        } else {
            body.append(section("Results", "<p class=\"muted\">No completed set point to analyse.</p>"))
        }
        body.append(section("How the numbers are computed", """
            <p>At each set point the usable readings (SpO<sub>2</sub> present, no probe-off, searching, low-perfusion or similar \
            flag) are averaged; bias = mean − set. A<sub>rms</sub> = √(Σ (SpO<sub>2,i</sub> − set<sub>i</sub>)² / n) over every \
            usable reading at set points inside the claimed range (ISO 80601-2-61). Against a simulator this checks the \
            monitor's processing and display, not the sensor's calibration on people.</p>
            """))
        return page(title: "Oximeter verification \(record.oximeter.serialNumber) \(run.verdict.outcome)", body: body)
    }

    /// The bias chart as an SVG element: per-point bias (mean − set) against the set SpO2, with ±A_rms
    /// limit lines.
    public static func biasSVG(_ analysis: OximeterAnalysis, claim: OximeterClaim) -> String {
        let points = analysis.points.sorted { $0.setPoint.spo2 < $1.setPoint.spo2 }
        let biases = points.compactMap { $0.bias?.percent }
        let limit = claim.armsLimit.percent
        let extent = max((biases.map(abs).max() ?? 0) * 1.3, limit * 1.3)
        let xs = points.map { $0.setPoint.spo2.percent }
        var chart = SVGChart(title: "SpO2 bias (mean − set) at each set point", xLabel: "set SpO2 (%)", yLabel: "bias (%)",
                             xRange: ((xs.min() ?? 70) - 3)...((xs.max() ?? 100) + 3), yRange: -extent...extent)
        chart.series.append(.init(name: "bias", colour: "#c0392b", points: points.map { ($0.setPoint.spo2.percent, $0.bias?.percent) }, markers: true, drawLine: false))
        chart.references = [
            .init(y: 0, label: "", colour: "#333", dash: nil, inLegend: false),
            .init(y: limit, label: "A_rms claim ±\(Fixed.text(limit, 1)) %", colour: "#777", dash: "6 4"),
            .init(y: -limit, label: "", colour: "#777", dash: "6 4", inLegend: false),
        ]
        if let arms = analysis.arms?.percent {
            chart.references.append(.init(y: arms, label: "measured A_rms \(Fixed.text(arms, 2)) %", colour: "#1a9850", dash: "2 3"))
        }
        return chart.render()
    }

    /// Every reading as CSV: `set_point,set_spo2,set_pulse_rate,elapsed_s,spo2,pulse_rate,flags,used`.
    /// Missing values are empty fields, never 0.
    public static func readingsCSV(_ record: OximeterVerificationRecord) -> String {
        var lines = [CSV.row(["set_point", "set_spo2", "set_pulse_rate", "elapsed_s", "spo2", "pulse_rate", "flags", "used"])]
        for (index, collection) in record.run.collections.enumerated() {
            for reading in collection.readings {
                lines.append(CSV.row([
                    String(index + 1), NumberTextShort.format(collection.setPoint.spo2.percent),
                    NumberTextShort.format(collection.setPoint.pulseRate.beatsPerMinute),
                    Fixed.text(reading.elapsed.seconds, 3),
                    reading.spo2.map { NumberTextShort.format($0.percent) } ?? "",
                    reading.pulseRate.map { NumberTextShort.format($0.beatsPerMinute) } ?? "",
                    reading.quality.names.joined(separator: "; "),
                    reading.usableSpO2 == nil ? "0" : "1",
                ]))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Per-set-point results as CSV, then the overall rows (`arms`, `mean_bias`, `verdict`, `incomplete`).
    public static func resultsCSV(_ record: OximeterVerificationRecord) -> String {
        var lines = [CSV.row(["item", "set_spo2", "set_pulse_rate", "readings", "valid_spo2", "missing_spo2", "flagged_spo2",
                              "mean_spo2", "bias", "rms_error", "mean_pulse_rate", "pulse_rate_error"])]
        let analysis = record.run.result?.analysis
        for point in analysis?.points ?? [] {
            lines.append(CSV.row([
                "set_point", NumberTextShort.format(point.setPoint.spo2.percent), NumberTextShort.format(point.setPoint.pulseRate.beatsPerMinute),
                String(point.readings), String(point.validSpO2), String(point.missingSpO2), String(point.flaggedSpO2),
                point.meanSpO2.map { Fixed.text($0.percent, 3) } ?? "", point.bias.map { Fixed.text($0.percent, 3) } ?? "",
                point.rmsError.map { Fixed.text($0.percent, 3) } ?? "", point.meanPulseRate.map { Fixed.text($0.beatsPerMinute, 2) } ?? "",
                point.pulseRateError.map { Fixed.text($0.beatsPerMinute, 2) } ?? "",
            ]))
        }
        let blanks = Array(repeating: "", count: 10)
        lines.append(CSV.row(["arms"] + [analysis?.arms.map { Fixed.text($0.percent, 4) } ?? ""] + blanks))
        lines.append(CSV.row(["mean_bias"] + [analysis?.meanBias.map { Fixed.text($0.percent, 4) } ?? ""] + blanks))
        lines.append(CSV.row(["verdict", record.run.verdict.outcome.rawValue] + blanks))
        lines.append(CSV.row(["incomplete", record.run.isIncomplete ? "1" : "0"] + blanks))
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Pieces

    private static func page(title: String, body: [String]) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(title))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; margin: 24px auto; max-width: 980px; color: #222; line-height: 1.4; padding: 0 16px; }
        h1 { font-size: 22px; margin-bottom: 8px; }
        h2 { font-size: 17px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
        table { border-collapse: collapse; margin: 8px 0; }
        th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #eee; vertical-align: top; font-size: 14px; }
        th { background: #f6f6f6; font-weight: 600; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .verdict { display: inline-block; font-size: 20px; font-weight: bold; padding: 6px 18px; border-radius: 6px; color: #fff; }
        .pass { background: #1a7f37; } .fail { background: #c62828; } .incomplete { background: #d97706; }
        ul.reasons { margin-top: 8px; }
        li.warning { color: #8a4b00; } li.error { color: #b00020; }
        .muted { color: #666; } .warn { color: #8a4b00; font-weight: 600; }
        figure { margin: 8px 0; } svg { max-width: 100%; height: auto; border: 1px solid #eee; }
        details summary { cursor: pointer; color: #2166ac; }
        @media print { details { display: block; } }
        </style>
        </head>
        <body>
        \(body.joined(separator: "\n"))
        <p class="muted">Generated by InfusionControl. Times are since the start of the run; the date is UTC.</p>
        </body>
        </html>

        """
    }

    private static func verdictBlock(_ verdict: CalibrationVerdict) -> String {
        "<div><span class=\"verdict \(verdict.outcome.rawValue)\">\(verdict.outcome)</span></div>\n<ul class=\"reasons\">"
            + verdict.reasons.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>"
    }

    private static func section(_ title: String, _ content: String) -> String {
        "<section>\n<h2>\(HTML.escape(title))</h2>\n\(content)\n</section>"
    }

    private static func table(_ rows: [(String, String)]) -> String {
        "<table>" + rows.map { "<tr><th>\(HTML.escape($0.0))</th><td>\(HTML.escape($0.1))</td></tr>" }.joined() + "</table>"
    }

    private static func trumpetTable(_ analysis: PumpAccuracyAnalysis) -> String {
        var rows = ["<table><tr><th class=\"num\">Window (min)</th><th class=\"num\">p</th><th class=\"num\">Windows m</th><th class=\"num\">Excluded</th><th class=\"num\">E<sub>p</sub>(max) %</th><th class=\"num\">E<sub>p</sub>(min) %</th></tr>"]
        for point in analysis.trumpet {
            rows.append("<tr><td class=\"num\">\(minutesText(point.window.actual))</td><td class=\"num\">\(point.window.intervals)</td><td class=\"num\">\(point.windowCount)</td><td class=\"num\">\(point.excludedWindows)</td><td class=\"num\">\(point.maximumError.map { Fixed.signed($0.percent, 2) } ?? "–")</td><td class=\"num\">\(point.minimumError.map { Fixed.signed($0.percent, 2) } ?? "–")</td></tr>")
        }
        return rows.joined() + "</table>"
    }

    private static func pointsTable(_ analysis: OximeterAnalysis) -> String {
        var rows = ["<table><tr><th class=\"num\">Set SpO<sub>2</sub> %</th><th class=\"num\">Set PR bpm</th><th class=\"num\">Readings</th><th class=\"num\">Valid</th><th class=\"num\">Missing</th><th class=\"num\">Flagged</th><th class=\"num\">Mean SpO<sub>2</sub></th><th class=\"num\">Bias %</th><th class=\"num\">Mean PR</th><th class=\"num\">PR error</th><th>In claim range</th></tr>"]
        for point in analysis.points {
            let cells = [
                NumberTextShort.format(point.setPoint.spo2.percent), NumberTextShort.format(point.setPoint.pulseRate.beatsPerMinute),
                String(point.readings), String(point.validSpO2), String(point.missingSpO2), String(point.flaggedSpO2),
                point.meanSpO2.map { Fixed.text($0.percent, 2) } ?? "–", point.bias.map { Fixed.signed($0.percent, 2) } ?? "–",
                point.meanPulseRate.map { Fixed.text($0.beatsPerMinute, 1) } ?? "–", point.pulseRateError.map { Fixed.signed($0.beatsPerMinute, 1) } ?? "–",
            ]
            rows.append("<tr>" + cells.map { "<td class=\"num\">\(HTML.escape($0))</td>" }.joined() + "<td>\(point.inClaimRange ? "yes" : "no")</td></tr>")
        }
        return rows.joined() + "</table>"
    }

    private static func samplesTable(_ run: PumpCalibrationRun) -> String {
        let flowByEnd = Dictionary(run.flow.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        var rows = ["<details><summary>\(run.samples.count) samples (click to show)</summary><table><tr><th class=\"num\">#</th><th class=\"num\">Time</th><th class=\"num\">Weight g</th><th>Stable</th><th class=\"num\">Q<sub>i</sub> mL/h</th><th>Problem</th></tr>"]
        for sample in run.samples {
            rows.append("<tr><td class=\"num\">\(sample.index)</td><td class=\"num\">\(Fixed.text(sample.elapsed.seconds, 1)) s</td><td class=\"num\">\(sample.grams.map { Fixed.text($0, 4) } ?? "–")</td><td>\(sample.grams == nil ? "" : (sample.isStable ? "yes" : "no"))</td><td class=\"num\">\(flowByEnd[sample.index]?.flow.map { Fixed.text($0.millilitresPerHour, 3) } ?? "–")</td><td>\(HTML.escape(sample.problem?.label ?? ""))</td></tr>")
        }
        return rows.joined() + "</table></details>"
    }

    private static func modeText(_ method: GravimetricMethod) -> String {
        switch method.mode {
        case .standard: "standard (IEC 60601-2-24 method)"
        case .quick: "quick routine check (NOT the IEC 60601-2-24 method; indicative only)"
        case .custom: "custom"
        }
    }

    private static func claimText(_ claim: PumpAccuracyClaim) -> String {
        var text = "overall ±\(Fixed.text(claim.overallTolerance.percent, 2)) %"
        if !claim.trumpetLimits.isEmpty {
            text += "; trumpet " + claim.trumpetLimits.map { "\(minutesText($0.window)) min ±\(Fixed.text($0.limit.percent, 2)) %" }.joined(separator: ", ")
        }
        return text
    }

    private static func minutesText(_ duration: Duration) -> String { NumberTextShort.format(duration.minutes) }

    static func dateText(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}
