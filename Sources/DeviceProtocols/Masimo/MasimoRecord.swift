import InfusionCore

extension Masimo {
    /// The tags of ASCII 1, in the order a Radical-7 writes them.
    public enum Tag: String, CaseIterable, Hashable, Sendable {
        /// `SN=`: device serial number (not on every model).
        case serialNumber = "SN"
        /// `SPO2=098%`.
        case spo2 = "SPO2"
        /// `BPM=072`: pulse rate.
        case pulseRate = "BPM"
        /// `PI=03.60%`: perfusion index.
        case perfusionIndex = "PI"
        /// `SPCO=--.-%`: carboxyhaemoglobin.
        case spco = "SPCO"
        /// `SPMET=--.-%`: methaemoglobin.
        case spmet = "SPMET"
        /// `DESAT=--`: desaturation index.
        case desat = "DESAT"
        /// `PIDELTA=+--`: PI delta.
        case piDelta = "PIDELTA"
        /// `PVI=027`: pleth variability index (not on every model).
        case pvi = "PVI"
        /// `ALARM=0000`: alarm bitmask (hex).
        case alarm = "ALARM"
        /// `EXC=000800`: exception bitmask (hex).
        case exceptions = "EXC"
    }

    /// The device's own clock as the line shows it (`MM/DD/YY HH:MM:SS`, device local time, no zone).
    /// Not trustworthy as a timestamp (the device clock is set by hand); record it, but time samples
    /// with the host's monotonic clock.
    public struct DeviceTime: Hashable, Sendable, CustomStringConvertible {
        /// The 17 characters as sent.
        public let text: String
        /// Month 1…12, day, two-digit year, hour, minute, second; nil when the text is not all digits.
        public let components: (month: Int, day: Int, year: Int, hour: Int, minute: Int, second: Int)?

        /// Reads "MM/DD/YY HH:MM:SS". The separators must be there; when the other characters are not
        /// all digits, `components` is nil. Nil when the shape is wrong.
        public init?(date: some StringProtocol, time: some StringProtocol) {
            let d = Array(date.utf8), t = Array(time.utf8)
            guard d.count == 8, t.count == 8, d[2] == UInt8(ascii: "/"), d[5] == UInt8(ascii: "/"),
                  t[2] == UInt8(ascii: ":"), t[5] == UInt8(ascii: ":"),
                  (d + t).allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else { return nil }
            text = String(date) + " " + String(time)
            func two(_ bytes: [UInt8], _ at: Int) -> Int? {
                let a = bytes[at], b = bytes[at + 1]
                guard a >= 0x30, a <= 0x39, b >= 0x30, b <= 0x39 else { return nil }
                return Int(a - 0x30) * 10 + Int(b - 0x30)
            }
            if let month = two(d, 0), let day = two(d, 3), let year = two(d, 6),
               let hour = two(t, 0), let minute = two(t, 3), let second = two(t, 6) {
                components = (month, day, year, hour, minute, second)
            } else {
                components = nil
            }
        }

        /// A device time from numbers (for simulators); each is written with two digits.
        public init(month: Int, day: Int, year: Int, hour: Int, minute: Int, second: Int) {
            func two(_ value: Int) -> String {
                let clamped = min(99, max(0, value))
                return clamped < 10 ? "0\(clamped)" : "\(clamped)"
            }
            text = "\(two(month))/\(two(day))/\(two(year)) \(two(hour)):\(two(minute)):\(two(second))"
            components = (min(99, max(0, month)), min(99, max(0, day)), min(99, max(0, year)),
                          min(99, max(0, hour)), min(99, max(0, minute)), min(99, max(0, second)))
        }

        /// Human-readable text for logs and error messages.
        public var description: String { text }

        /// Equal when they encode to the same bytes/value.
        public static func == (lhs: Self, rhs: Self) -> Bool { lhs.text == rhs.text }
        /// Hashes what `==` compares.
        public func hash(into hasher: inout Hasher) { hasher.combine(text) }
    }

    /// How a simulator writes a line.
    public enum LineStyle: Hashable, Sendable {
        /// Radical-7 / Rad-8: `ALARM` as 4 and `EXC` as 6 hex digits.
        case radical7
        /// Radical-5: hex without leading zeros (`ALARM=20 EXC=800`).
        case radical5
    }

    /// Why a line is not a valid ASCII 1 record.
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The line (printable characters only, shortened to 120).
        public let line: String
        /// What was wrong.
        public let reason: String

        init(_ line: some StringProtocol, _ reason: String) {
            var printable = ""
            for scalar in line.unicodeScalars.prefix(120) {
                printable.unicodeScalars.append(scalar.value >= 0x20 && scalar.value < 0x7F ? scalar : "?")
            }
            self.line = printable
            self.reason = reason
        }

        /// Human-readable text for logs and error messages.
        public var description: String {
            "cannot read the Masimo line \"\(line)\": \(reason) (check that the oximeter outputs ASCII 1 at 9600 8N1)"
        }
    }

    /// A field with a tag this codec does not know, kept as sent.
    public struct UnknownField: Hashable, Sendable {
        /// The tag.
        public var tag: String
        /// The value text.
        public var value: String
    }

    /// One ASCII 1 line. `nil` readings were sent as dashes (no value) or not sent at all; `tags` says
    /// which tags the line carried, in order.
    public struct Record: Hashable, Sendable {
        /// The device clock.
        public var deviceTime: DeviceTime
        /// `SN=`, when sent.
        public var serialNumber: String?
        /// `SPO2=`.
        public var spo2: Percentage?
        /// `BPM=`.
        public var pulseRate: PulseRate?
        /// `PI=`.
        public var perfusionIndex: Percentage?
        /// `SPCO=`.
        public var spco: Percentage?
        /// `SPMET=`.
        public var spmet: Percentage?
        /// `DESAT=` (index, unitless).
        public var desat: Int?
        /// `PIDELTA=` (signed, unitless).
        public var piDelta: Int?
        /// `PVI=` (%, as an integer index).
        public var pvi: Int?
        /// `ALARM=`; nil when the line has no ALARM field.
        public var alarms: AlarmFlags?
        /// `EXC=`; nil when the line has no EXC field.
        public var exceptions: ExceptionFlags?
        /// The known tags the line carried, in order (`line(style:)` writes these).
        public var tags: [Tag]
        /// Fields with unknown tags, in order (written after the known ones).
        public var unknownFields: [UnknownField]

        /// The tags of a Radical-7 line.
        public static let radical7Tags: [Tag] = Tag.allCases
        /// The tags of a Radical-5 line.
        public static let radical5Tags: [Tag] = [.spo2, .pulseRate, .perfusionIndex, .alarm, .exceptions]

        /// A record; by default with the Radical-7 tags.
        public init(deviceTime: DeviceTime, serialNumber: String? = nil, spo2: Percentage?, pulseRate: PulseRate?,
                    perfusionIndex: Percentage? = nil, spco: Percentage? = nil, spmet: Percentage? = nil,
                    desat: Int? = nil, piDelta: Int? = nil, pvi: Int? = nil, alarms: AlarmFlags? = [],
                    exceptions: ExceptionFlags? = .masimoSET, tags: [Tag] = Record.radical7Tags,
                    unknownFields: [UnknownField] = []) {
            self.deviceTime = deviceTime
            self.serialNumber = serialNumber
            self.spo2 = spo2
            self.pulseRate = pulseRate
            self.perfusionIndex = perfusionIndex
            self.spco = spco
            self.spmet = spmet
            self.desat = desat
            self.piDelta = piDelta
            self.pvi = pvi
            self.alarms = alarms
            self.exceptions = exceptions
            self.tags = tags
            self.unknownFields = unknownFields
        }

        /// Parses one line (without CR LF). Finds the record by its first `TAG=` field: the two words
        /// before it are the date and time (anything earlier, such as the tail of a line cut short when
        /// the cable was plugged in, is ignored). `SPO2` and `BPM` are required; every field is read by
        /// tag, values must match their tag's format exactly, and a repeated tag is an error.
        public init(parsing text: some StringProtocol) throws(ParseError) {
            let line = Substring(text)
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = words.firstIndex(where: { $0.contains("=") }) else {
                throw ParseError(line, "no TAG=value fields")
            }
            guard first >= 2 else { throw ParseError(line, "no date and time before the first field") }
            let dateWord = words[first - 2]
            guard let time = DeviceTime(date: dateWord.suffix(8), time: words[first - 1]) else {
                throw ParseError(line, "the date and time are not MM/DD/YY HH:MM:SS")
            }
            var record = Record(deviceTime: time, spo2: nil, pulseRate: nil, alarms: nil, exceptions: nil, tags: [])
            for word in words[first...] {
                guard let equals = word.firstIndex(of: "=") else { throw ParseError(line, "\"\(word)\" is not TAG=value") }
                let tagText = word[..<equals]
                let value = word[word.index(after: equals)...]
                guard !tagText.isEmpty, tagText.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) }) else {
                    throw ParseError(line, "\"\(tagText)\" is not a tag")
                }
                guard let tag = Tag(rawValue: String(tagText)) else {
                    guard !record.unknownFields.contains(where: { $0.tag == tagText }) else {
                        throw ParseError(line, "tag \(tagText) appears twice")
                    }
                    record.unknownFields.append(UnknownField(tag: String(tagText), value: String(value)))
                    continue
                }
                guard !record.tags.contains(tag) else { throw ParseError(line, "tag \(tag.rawValue) appears twice") }
                record.tags.append(tag)
                try record.read(tag, value, line: line)
            }
            guard record.tags.contains(.spo2), record.tags.contains(.pulseRate) else {
                throw ParseError(line, "SPO2 or BPM is missing")
            }
            self = record
        }

        private mutating func read(_ tag: Tag, _ value: Substring, line: Substring) throws(ParseError) {
            func fail(_ expected: String) -> ParseError { ParseError(line, "\(tag.rawValue)=\(value): expected \(expected)") }
            switch tag {
            case .serialNumber:
                guard !value.isEmpty else { throw fail("a serial number") }
                serialNumber = String(value)
            case .spo2:
                guard let reading = Masimo.reading(value, percent: true, fractionDigits: 0, limit: 100) else { throw fail("3 digits and %, like 098%") }
                spo2 = reading.map(Percentage.percent)
            case .pulseRate:
                guard let reading = Masimo.reading(value, percent: false, fractionDigits: 0, limit: 999) else { throw fail("3 digits, like 072") }
                pulseRate = reading.map(PulseRate.beatsPerMinute)
            case .perfusionIndex:
                guard let reading = Masimo.reading(value, percent: true, fractionDigits: 2, limit: 100) else { throw fail("a number and %, like 03.60%") }
                perfusionIndex = reading.map(Percentage.percent)
            case .spco:
                guard let reading = Masimo.reading(value, percent: true, fractionDigits: 1, limit: 100) else { throw fail("a number and %, like 01.5%") }
                spco = reading.map(Percentage.percent)
            case .spmet:
                guard let reading = Masimo.reading(value, percent: true, fractionDigits: 1, limit: 100) else { throw fail("a number and %, like 01.5%") }
                spmet = reading.map(Percentage.percent)
            case .desat:
                guard let reading = Masimo.reading(value, percent: false, fractionDigits: 0, limit: 999) else { throw fail("digits, like 05") }
                desat = reading.map { Int($0) }
            case .piDelta:
                guard let reading = Masimo.signedReading(value) else { throw fail("a sign and digits, like +05") }
                piDelta = reading
            case .pvi:
                guard let reading = Masimo.reading(value, percent: false, fractionDigits: 0, limit: 999) else { throw fail("3 digits, like 027") }
                pvi = reading.map { Int($0) }
            case .alarm:
                guard let bits = Masimo.hex(value) else { throw fail("hex digits, like 0000") }
                alarms = AlarmFlags(rawValue: bits)
            case .exceptions:
                guard let bits = Masimo.hex(value) else { throw fail("hex digits, like 000800") }
                exceptions = ExceptionFlags(rawValue: bits)
            }
        }

        /// The line as the device writes it, without CR LF: the tags in `tags` order, then unknown
        /// fields. Missing readings are written as dashes in each field's format.
        public func line(style: LineStyle = .radical7) -> String {
            var parts = [deviceTime.text]
            for tag in tags { parts.append(tag.rawValue + "=" + text(of: tag, style: style)) }
            for field in unknownFields { parts.append(field.tag + "=" + field.value) }
            return parts.joined(separator: " ")
        }

        /// The line's bytes with the CR LF terminator.
        public func encoded(style: LineStyle = .radical7) -> [UInt8] { Array((line(style: style) + "\r\n").utf8) }

        private func text(of tag: Tag, style: LineStyle) -> String {
            switch tag {
            case .serialNumber: serialNumber ?? "----------"
            case .spo2: Masimo.fixed(spo2?.percent, integerDigits: 3, fractionDigits: 0) + "%"
            case .pulseRate: Masimo.fixed(pulseRate?.beatsPerMinute, integerDigits: 3, fractionDigits: 0)
            case .perfusionIndex: Masimo.fixed(perfusionIndex?.percent, integerDigits: 2, fractionDigits: 2) + "%"
            case .spco: Masimo.fixed(spco?.percent, integerDigits: 2, fractionDigits: 1) + "%"
            case .spmet: Masimo.fixed(spmet?.percent, integerDigits: 2, fractionDigits: 1) + "%"
            case .desat: Masimo.fixed(desat.map(Double.init), integerDigits: 2, fractionDigits: 0)
            case .piDelta:
                if let piDelta { (piDelta < 0 ? "-" : "+") + Masimo.fixed(Double(abs(piDelta)), integerDigits: 2, fractionDigits: 0) } else { "+--" }
            case .pvi: Masimo.fixed(pvi.map(Double.init), integerDigits: 3, fractionDigits: 0)
            case .alarm: Masimo.hexText(alarms?.rawValue ?? 0, digits: style == .radical7 ? 4 : 0)
            case .exceptions: Masimo.hexText(exceptions?.rawValue ?? 0, digits: style == .radical7 ? 6 : 0)
            }
        }
    }

    /// A reading: `--…` (second character a dash) is nil; otherwise digits with at most one point and
    /// at most `fractionDigits` decimals, `%` required when `percent`, value ≤ `limit`. Outer nil: malformed.
    static func reading(_ text: Substring, percent: Bool, fractionDigits: Int, limit: Double) -> Double?? {
        var body = text
        if percent {
            guard body.last == "%" else { return nil }
            body = body.dropLast()
        }
        let utf8 = Array(body.utf8)
        if utf8.count >= 2 && utf8[1] == UInt8(ascii: "-") || utf8 == [UInt8(ascii: "-")] {
            return .some(nil)
        }
        guard !utf8.isEmpty, utf8.count <= 8 else { return nil }
        var digits = 0, fractionCount = 0, seenPoint = false
        for byte in utf8 {
            if byte == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else if byte >= 0x30 && byte <= 0x39 {
                digits += 1
                if seenPoint { fractionCount += 1 }
            } else {
                return nil
            }
        }
        // The nearest Double to the decimal text, so "03.60" is exactly the Double written 3.6.
        guard digits > 0, fractionCount <= fractionDigits, let value = Double(String(body)), value <= limit else { return nil }
        return .some(value)
    }

    /// `+05`, `-3`, `05`, or dashes (nil). Outer nil: malformed.
    static func signedReading(_ text: Substring) -> Int?? {
        let utf8 = Array(text.utf8)
        if utf8.count >= 2 && utf8[1] == UInt8(ascii: "-") || utf8 == [UInt8(ascii: "-")] { return .some(nil) }
        var body = text
        var sign = 1
        if body.first == "+" { body = body.dropFirst() } else if body.first == "-" { sign = -1; body = body.dropFirst() }
        guard !body.isEmpty, body.count <= 4, body.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int(body) else { return nil }
        return .some(sign * value)
    }

    /// 1–8 hex digits.
    static func hex(_ text: Substring) -> UInt32? {
        guard (1...8).contains(text.utf8.count) else { return nil }
        return UInt32(text, radix: 16)
    }

    static func hexText(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// `value` zero-padded to `integerDigits` with `fractionDigits` decimals (rounded half up), or the
    /// same shape in dashes when nil or not finite ("---", "--.-").
    static func fixed(_ value: Double?, integerDigits: Int, fractionDigits: Int) -> String {
        guard let value, value.isFinite, value >= 0 else {
            return String(repeating: "-", count: integerDigits)
                + (fractionDigits > 0 ? "." + String(repeating: "-", count: fractionDigits) : "")
        }
        var scale = 1.0
        for _ in 0..<fractionDigits { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let divisor = Int(scale)
        let whole = String(scaled / divisor)
        var text = String(repeating: "0", count: max(0, integerDigits - whole.count)) + whole
        if fractionDigits > 0 {
            let fraction = String(scaled % divisor)
            text += "." + String(repeating: "0", count: fractionDigits - fraction.count) + fraction
        }
        return text
    }
}
