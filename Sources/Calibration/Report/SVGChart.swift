import Foundation

/// A minimal SVG line chart: linear axes with "nice" ticks, series (polylines with gaps), horizontal
/// reference lines, shaded x-ranges and a legend. Self-contained markup (no scripts, no external fonts).
/// Internal to the report renderer; pure.
struct SVGChart {
    struct Series {
        var name: String
        var colour: String
        /// Points; a nil y breaks the line.
        var points: [(x: Double, y: Double?)]
        var markers: Bool = false
        var dash: String? = nil
        var width: Double = 2
        var inLegend: Bool = true
        var drawLine: Bool = true
    }

    struct Reference {
        var y: Double
        var label: String
        var colour: String
        var dash: String?
        var inLegend: Bool = true
    }

    struct Band {
        var from: Double
        var to: Double
        var label: String
        var colour: String
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var xRange: ClosedRange<Double>
    var yRange: ClosedRange<Double>
    var series: [Series] = []
    var references: [Reference] = []
    var bands: [Band] = []
    var xTicks: [Double]? = nil
    var width = 760.0
    var height = 380.0

    private let left = 70.0, right = 20.0, top = 40.0, bottom = 88.0

    private var plotWidth: Double { width - left - right }
    private var plotHeight: Double { height - top - bottom }

    private func px(_ x: Double) -> Double {
        let span = xRange.upperBound - xRange.lowerBound
        return left + (span > 0 ? (x - xRange.lowerBound) / span : 0.5) * plotWidth
    }

    private func py(_ y: Double) -> Double {
        let span = yRange.upperBound - yRange.lowerBound
        let clamped = min(max(y, yRange.lowerBound), yRange.upperBound)
        return top + plotHeight - (span > 0 ? (clamped - yRange.lowerBound) / span : 0.5) * plotHeight
    }

    private static func n(_ value: Double) -> String { Fixed.text(value, 1) }

    /// Ticks at 1, 2 or 5 × 10^k covering `range`, about `count` of them.
    static func niceTicks(_ range: ClosedRange<Double>, count: Int = 6) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let raw = span / Double(max(1, count))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var ticks: [Double] = []
        var tick = (range.lowerBound / step).rounded(.up) * step
        while tick <= range.upperBound + step * 1e-9, ticks.count < 50 {
            ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
            tick += step
        }
        return ticks
    }

    /// A symmetric-ish range that holds `values` with margin, at least `minimum` either side of `centre`.
    static func paddedRange(_ values: [Double], including extra: [Double] = [], margin: Double = 0.15) -> ClosedRange<Double> {
        let all = (values + extra).filter(\.isFinite)
        guard let low = all.min(), let high = all.max() else { return 0...1 }
        let span = max(high - low, max(abs(high), abs(low), 1) * 0.1)
        return (low - span * margin)...(high + span * margin)
    }

    func render() -> String {
        var svg: [String] = []
        svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\" font-family=\"sans-serif\" font-size=\"12\">")
        svg.append("<rect x=\"0\" y=\"0\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" fill=\"#ffffff\"/>")
        svg.append("<text x=\"\(Self.n(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(HTML.escape(title))</text>")
        // Bands.
        for band in bands {
            let x0 = px(max(band.from, xRange.lowerBound)), x1 = px(min(band.to, xRange.upperBound))
            svg.append("<rect x=\"\(Self.n(x0))\" y=\"\(Self.n(top))\" width=\"\(Self.n(max(0, x1 - x0)))\" height=\"\(Self.n(plotHeight))\" fill=\"\(band.colour)\"/>")
            svg.append("<text x=\"\(Self.n((x0 + x1) / 2))\" y=\"\(Self.n(top + 14))\" text-anchor=\"middle\" fill=\"#555\">\(HTML.escape(band.label))</text>")
        }
        // Grid and axes.
        let yTicks = Self.niceTicks(yRange)
        for tick in yTicks {
            let y = py(tick)
            svg.append("<line x1=\"\(Self.n(left))\" y1=\"\(Self.n(y))\" x2=\"\(Self.n(left + plotWidth))\" y2=\"\(Self.n(y))\" stroke=\"#e3e3e3\"/>")
            svg.append("<text x=\"\(Self.n(left - 6))\" y=\"\(Self.n(y + 4))\" text-anchor=\"end\">\(Self.tickText(tick))</text>")
        }
        let xs = xTicks ?? Self.niceTicks(xRange, count: 10)
        for tick in xs where xRange.contains(tick) {
            let x = px(tick)
            svg.append("<line x1=\"\(Self.n(x))\" y1=\"\(Self.n(top))\" x2=\"\(Self.n(x))\" y2=\"\(Self.n(top + plotHeight))\" stroke=\"#f0f0f0\"/>")
            svg.append("<text x=\"\(Self.n(x))\" y=\"\(Self.n(top + plotHeight + 16))\" text-anchor=\"middle\">\(Self.tickText(tick))</text>")
        }
        svg.append("<rect x=\"\(Self.n(left))\" y=\"\(Self.n(top))\" width=\"\(Self.n(plotWidth))\" height=\"\(Self.n(plotHeight))\" fill=\"none\" stroke=\"#888\"/>")
        svg.append("<text x=\"\(Self.n(left + plotWidth / 2))\" y=\"\(Self.n(top + plotHeight + 34))\" text-anchor=\"middle\">\(HTML.escape(xLabel))</text>")
        svg.append("<text transform=\"translate(16 \(Self.n(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(HTML.escape(yLabel))</text>")
        // Reference lines.
        for reference in references where yRange.contains(reference.y) {
            let y = py(reference.y)
            let dash = reference.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
            svg.append("<line x1=\"\(Self.n(left))\" y1=\"\(Self.n(y))\" x2=\"\(Self.n(left + plotWidth))\" y2=\"\(Self.n(y))\" stroke=\"\(reference.colour)\" stroke-width=\"1.5\"\(dash)/>")
        }
        // Series.
        for series in series {
            var segment: [String] = []
            var segments: [[String]] = []
            for point in series.points {
                if let y = point.y, y.isFinite, point.x.isFinite {
                    segment.append("\(Self.n(px(point.x))),\(Self.n(py(y)))")
                } else if !segment.isEmpty {
                    segments.append(segment)
                    segment = []
                }
            }
            if !segment.isEmpty { segments.append(segment) }
            let dash = series.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
            for part in segments where part.count > 1 && series.drawLine {
                svg.append("<polyline fill=\"none\" stroke=\"\(series.colour)\" stroke-width=\"\(Self.n(series.width))\"\(dash) stroke-linejoin=\"round\" points=\"\(part.joined(separator: " "))\"/>")
            }
            if series.markers || segments.contains(where: { $0.count == 1 }) {
                for point in series.points {
                    guard let y = point.y, y.isFinite else { continue }
                    svg.append("<circle cx=\"\(Self.n(px(point.x)))\" cy=\"\(Self.n(py(y)))\" r=\"3.5\" fill=\"\(series.colour)\"/>")
                }
            }
        }
        // Legend, below the x-axis label, wrapping.
        var entries: [(String, String, String?, Bool, Bool)] = series.filter(\.inLegend).map { ($0.name, $0.colour, $0.dash, $0.markers, $0.drawLine) }
        entries += references.filter(\.inLegend).map { ($0.label, $0.colour, $0.dash, false, true) }
        var x = left, y = top + plotHeight + 58
        for (label, colour, dash, marker, line) in entries {
            let itemWidth = 34 + Double(label.count) * 6.6 + 18
            if x + itemWidth > width - right {
                x = left
                y += 18
            }
            let dashText = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
            if line {
                svg.append("<line x1=\"\(Self.n(x))\" y1=\"\(Self.n(y - 4))\" x2=\"\(Self.n(x + 26))\" y2=\"\(Self.n(y - 4))\" stroke=\"\(colour)\" stroke-width=\"2\"\(dashText)/>")
            }
            if marker { svg.append("<circle cx=\"\(Self.n(x + 13))\" cy=\"\(Self.n(y - 4))\" r=\"3.5\" fill=\"\(colour)\"/>") }
            svg.append("<text x=\"\(Self.n(x + 32))\" y=\"\(Self.n(y))\">\(HTML.escape(label))</text>")
            x += itemWidth
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }

    private static func tickText(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? Fixed.text(rounded, 0) : NumberTextShort.format(rounded)
    }
}

/// Short number text for ticks (up to 3 decimals, trailing zeros removed).
enum NumberTextShort {
    static func format(_ value: Double) -> String {
        var text = Fixed.text(value, 3)
        while text.contains("."), text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

/// HTML text escaping.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// CSV field quoting (RFC 4180).
enum CSV {
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func row(_ fields: [String]) -> String { fields.map(field).joined(separator: ",") }

    /// A free-text field (operator, notes, messages): a leading =, +, - or @ is prefixed with an
    /// apostrophe so a spreadsheet does not run it as a formula.
    static func text(_ value: String) -> String {
        guard let first = value.first, "=+-@\t\r".contains(first) else { return value }
        return "'" + value
    }
}
