import Foundation
import TOMLKit

/// Reads a strict TOML configuration file (drug library, scenario…) into typed values, collecting every
/// problem as a located `ConfigIssue` instead of stopping at the first.
///
/// Strict means: every key a reader does not ask for is reported as unknown (with the nearest allowed key
/// as a suggestion, see `finish(_:allowed:elsewhere:)`), every quantity is a quoted number with its unit,
/// and a file with any problem is refused whole. Typical use:
///
/// ```swift
/// let value = try StrictTOMLReader.read(text: text, source: path, subject: "scenario",
///                                       unreadableFix: "compare the file with …") { reader, root in
///     reader.checkFormat(&root, supported: 1)
///     guard var patient = reader.subtable(&root, "patient") else { return nil }
///     let weight = reader.quantity(&patient, "weight", BodyWeight.self, in: .kilograms(3)...(.kilograms(300)))
///     reader.finish(patient, allowed: ["weight"])
///     reader.finish(root, allowed: ["format", "patient"])
///     return weight
/// }
/// ```
///
/// Every getter marks its key as used, reports what is wrong (missing, wrong type, wrong unit, out of
/// range) with the key's path and line, and returns nil when the value cannot be used. Pure: no I/O;
/// `source` is only used in messages. A value; confine each reader to one thread at a time.
public struct StrictTOMLReader: Sendable {
    /// The file the text came from (a path or a placeholder such as "<built-in>"), for messages.
    public let source: String
    /// Maps key paths to lines of the text being read.
    public let locator: TOMLKeyLocator
    /// Every problem reported so far, in the order found.
    public private(set) var issues: [ConfigIssue] = []

    /// A reader for `text` from `source` (the text is only indexed for line numbers here; parse it with
    /// `parse(text:source:subject:)` or use `read(text:source:subject:unreadableFix:_:)`).
    public init(text: String, source: String) {
        self.source = source
        self.locator = TOMLKeyLocator(text: text)
    }

    /// Reports a problem with the key or table at `key` (a path such as `profile[0].drug[1].name`, located
    /// by `locator`; nil for the file as a whole).
    public mutating func report(_ key: String?, _ problem: String, fix: String) {
        issues.append(ConfigIssue(file: source, line: key.flatMap { locator.line(of: $0) }, key: key, problem: problem, fix: fix))
    }

    /// Adds an issue found by other means (such as a checksum check), as is.
    public mutating func record(_ issue: ConfigIssue) {
        issues.append(issue)
    }

    // MARK: Whole files

    /// Parses `text` as TOML. A syntax error throws a `ConfigLoadError` about `subject` with one issue
    /// naming the line. Pure.
    public static func parse(text: String, source: String, subject: String) throws(ConfigLoadError) -> Table {
        do {
            return Table(path: "", table: try TOMLTable(string: text))
        } catch let error as TOMLParseError {
            throw ConfigLoadError(subject: subject, issues: [ConfigIssue(
                file: source, line: error.source.begin.line, key: nil, problem: "not valid TOML: \(error.description)",
                fix: "correct the syntax at that line (strings and quantities need double quotes, tables [name], "
                    + "arrays of tables [[name]])")])
        } catch {
            throw ConfigLoadError(subject: subject, issues: [ConfigIssue(
                file: source, line: nil, key: nil, problem: "not valid TOML: \(error)", fix: "correct the file's syntax")])
        }
    }

    /// Parses `text`, hands a reader and the root table to `body`, and returns what `body` built, or throws
    /// every issue reported (sorted into file order). When `body` returns nil without reporting anything,
    /// the refusal says the `subject` could not be read, with `unreadableFix`. Pure.
    public static func read<Value>(
        text: String, source: String, subject: String, unreadableFix: String,
        _ body: (inout StrictTOMLReader, inout Table) -> Value?
    ) throws(ConfigLoadError) -> Value {
        var root = try parse(text: text, source: source, subject: subject)
        var reader = StrictTOMLReader(text: text, source: source)
        let value = body(&reader, &root)
        if !reader.issues.isEmpty {
            throw ConfigLoadError(subject: subject, issues: ConfigLoadError.inFileOrder(reader.issues))
        }
        guard let value else {
            throw ConfigLoadError(subject: subject, issues: [ConfigIssue(
                file: source, line: nil, key: nil, problem: "the \(subject) could not be read", fix: unreadableFix)])
        }
        return value
    }

    /// Checks the top-level `format` key (an integer) against the one version this code reads.
    public mutating func checkFormat(_ root: inout Table, supported version: Int) {
        guard let format = root.value("format") else {
            report(root.key("format"), "missing required key \"format\"", fix: "add `format = \(version)` at the top of the file")
            return
        }
        if format.int != version {
            report(root.key("format"), "unsupported format \(format.debugDescription)",
                   fix: "this version of InfusionControl reads `format = \(version)`")
        }
    }

    // MARK: Tables

    /// A table being read: its path and the keys asked for so far, so that `finish` can report the rest
    /// as unknown. Not thread-safe (wraps a `TOMLTable`); use it where it was read.
    public struct Table {
        /// The table's key path: "" for the top level, `scenario`, `profile[0].drug[1]`.
        public let path: String
        /// The parsed table, for checks the typed getters do not cover.
        public let table: TOMLTable
        /// The keys asked for so far.
        public private(set) var used: Set<String> = []

        /// A table at `path`; `path` is "" for the root.
        public init(path: String, table: TOMLTable) {
            self.path = path
            self.table = table
        }

        /// The path of key `name` in this table.
        public func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

        /// How the table is named in messages: "the top level", "[profile.alarms]" or "[[event]]", as
        /// written in the file (without element indices).
        public var header: String {
            if path.isEmpty { return "the top level" }
            let written = StrictTOMLReader.written(path)
            return path.hasSuffix("]") ? "[[\(written)]]" : "[\(written)]"
        }

        /// The keys present in the file (used or not), sorted.
        public var keys: [String] { table.keys.sorted() }

        /// True when the file has key `name` in this table (does not mark it as used).
        public func contains(_ name: String) -> Bool { table[name] != nil }

        /// The raw value of `name`, marking it as used; nil when absent.
        public mutating func value(_ name: String) -> (any TOMLValueConvertible)? {
            used.insert(name)
            return table[name]
        }

        /// Marks keys as used without reading them (such as a checksum line checked elsewhere).
        public mutating func markUsed(_ names: String...) { used.formUnion(names) }

        /// Marks every key as used: for a table already refused as a whole, so its keys are not also
        /// reported as unknown.
        public mutating func markAllUsed() { used.formUnion(table.keys) }
    }

    /// `path` as written in a header: element indices removed (`profile[0].drug[1]` → `profile.drug`).
    static func written(_ path: String) -> String {
        var result = ""
        var inIndex = false
        for character in path {
            if character == "[" { inIndex = true } else if character == "]" { inIndex = false } else if !inIndex { result.append(character) }
        }
        return result
    }

    /// "an integer", "a string": a TOML type with its indefinite article, for messages.
    static func article(_ type: TOMLType) -> String {
        let name = type.description
        return "aeiou".contains(name.prefix(1)) ? "an \(name)" : "a \(name)"
    }

    /// Reports every key of `table` that was not asked for. A key listed in `elsewhere` gets that text
    /// (saying where it does belong) instead of "unknown"; other unknown keys get a "did you mean" for
    /// the allowed key within 3 edits, and the list of `allowed` keys.
    public mutating func finish(_ table: Table, allowed: [String], elsewhere: [String: String] = [:]) {
        let list = allowed.joined(separator: ", ")
        for key in table.keys where !table.used.contains(key) {
            if let owner = elsewhere[key] {
                report(table.key(key), "\"\(key)\" does not apply here", fix: "\(owner); in \(table.header) use only: \(list)")
                continue
            }
            let hint = Self.suggestion(for: key, among: allowed).map { "did you mean \"\($0)\"? " } ?? ""
            report(table.key(key), "unknown key \"\(key)\" in \(table.header)", fix: "\(hint)remove it or use one of: \(list)")
        }
    }

    /// The allowed key nearest to `key`, when it is within 3 edits.
    static func suggestion(for key: String, among allowed: [String]) -> String? {
        let scored = allowed.map { ($0, editDistance($0, key)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 3 else { return nil }
        return best.0
    }

    /// Levenshtein distance (insertions, deletions and substitutions of characters).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let above = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    /// The sub-table `name` of `parent`. Reports it when missing (if `required`) or not a table.
    public mutating func subtable(_ parent: inout Table, _ name: String, required: Bool = true) -> Table? {
        let path = parent.key(name)
        guard let value = parent.value(name) else {
            if required { report(path, "missing table [\(Self.written(path))]", fix: "add a [\(Self.written(path))] table") }
            return nil
        }
        guard let table = value.table else {
            report(path, "\"\(name)\" must be a table, not \(Self.article(value.type))", fix: "write it as [\(Self.written(path))] followed by its keys")
            return nil
        }
        return Table(path: path, table: table)
    }

    /// The array of tables `name` of `parent` (`[[name]]` entries), as tables at `name[0]`, `name[1]`…
    /// Reports it when not an array of tables, and, if `required`, when absent or without any table.
    public mutating func tableArray(_ parent: inout Table, _ name: String, required: Bool = true) -> [Table] {
        let path = parent.key(name)
        let fix = "add at least one [[\(Self.written(path))]] table"
        guard let value = parent.value(name) else {
            if required { report(path, "missing [[\(Self.written(path))]] entries", fix: fix) }
            return []
        }
        guard let array = value.array else {
            report(path, "\"\(name)\" must be an array of tables", fix: "write each entry as [[\(Self.written(path))]]")
            return []
        }
        var tables: [Table] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                report("\(path)[\(index)]", "entry \(index) of \"\(name)\" is not a table", fix: "write each entry as [[\(Self.written(path))]]")
                continue
            }
            tables.append(Table(path: "\(path)[\(index)]", table: table))
        }
        if required && tables.isEmpty { report(path, "no \(name) entries", fix: fix) }
        return tables
    }

    // MARK: Values

    /// A non-empty string. Reports it when missing (if `required`), not a string, or blank.
    public mutating func string(_ t: inout Table, _ name: String, required: Bool = true) -> String? {
        guard let value = t.value(name) else {
            if required { report(t.key(name), "missing required key \"\(name)\"", fix: "add `\(name) = \"…\"` to \(t.header)") }
            return nil
        }
        guard let text = value.string else {
            report(t.key(name), "\"\(name)\" must be a string, not \(Self.article(value.type))", fix: "write it in double quotes")
            return nil
        }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            report(t.key(name), "\"\(name)\" is empty", fix: required ? "give it a value" : "give it a value or remove the key")
            return nil
        }
        return text
    }

    /// `true` or `false` (unquoted). Reports it when missing (if `required`) or not a boolean.
    public mutating func bool(_ t: inout Table, _ name: String, required: Bool = true) -> Bool? {
        let fix = "write `\(name) = true` or `\(name) = false` (no quotes)"
        guard let value = t.value(name) else {
            if required { report(t.key(name), "missing required key \"\(name)\"", fix: "\(fix) in \(t.header)") }
            return nil
        }
        guard let flag = value.bool else {
            report(t.key(name), "\"\(name)\" must be true or false, not \(value.debugDescription)", fix: fix)
            return nil
        }
        return flag
    }

    /// A whole number (unquoted), within `range` when given. Reports it when missing (if `required`), not
    /// an integer, or outside `range`.
    public mutating func integer(_ t: inout Table, _ name: String, required: Bool = true, in range: ClosedRange<Int>? = nil) -> Int? {
        let bounds = range.map(Self.describe) ?? ""
        let example = range.map { min(max(1, $0.lowerBound), $0.upperBound) } ?? 1
        guard let value = t.value(name) else {
            if required { report(t.key(name), "missing required key \"\(name)\"", fix: "add `\(name) = \(example)` to \(t.header)") }
            return nil
        }
        guard let number = value.int, range?.contains(number) ?? true else {
            report(t.key(name), "\"\(name)\" must be a whole number\(bounds), not \(value.debugDescription)",
                   fix: "write a plain integer\(bounds) without quotes, e.g. `\(name) = \(example)`")
            return nil
        }
        return number
    }

    private static func describe(_ range: ClosedRange<Int>) -> String {
        if range.upperBound == .max { return " of \(range.lowerBound) or more" }
        if range.lowerBound == .min { return " of \(range.upperBound) or less" }
        return " from \(range.lowerBound) to \(range.upperBound)"
    }

    /// A plain number without a unit (an unquoted integer or decimal), within `range` when given. Reports
    /// it when missing (if `required`), not a number, or outside `range`.
    public mutating func number(_ t: inout Table, _ name: String, required: Bool = true, in range: ClosedRange<Double>? = nil) -> Double? {
        guard let value = t.value(name) else {
            if required { report(t.key(name), "missing required key \"\(name)\"", fix: "add `\(name) = <number>` (no quotes) to \(t.header)") }
            return nil
        }
        guard let number = value.double ?? value.int.map(Double.init), number.isFinite else {
            report(t.key(name), "\"\(name)\" must be a number, not \(value.debugDescription)",
                   fix: "write a plain number without quotes, e.g. `\(name) = 1.5`")
            return nil
        }
        if let range, !range.contains(number) {
            let low = NumberText.format(range.lowerBound, fractionDigits: 6), high = NumberText.format(range.upperBound, fractionDigits: 6)
            report(t.key(name), "\(NumberText.format(number, fractionDigits: 6)) is outside the accepted range \(low) to \(high)",
                   fix: "use a value from \(low) to \(high)")
            return nil
        }
        return number
    }

    /// A quantity written as a quoted number with its unit ("0.5 mg/kg/h", "80 kg"), of any
    /// `PhysicalQuantity` type, within `range` when given. Negative values are refused by the parser.
    /// Reports it when missing (if `required`), unquoted, without a unit or with one of another dimension,
    /// or outside `range`.
    public mutating func quantity<Q: PhysicalQuantity>(
        _ t: inout Table, _ name: String, _ type: Q.Type, required: Bool = true, in range: ClosedRange<Q>? = nil
    ) -> Q? {
        let units = Q.Unit.acceptedSymbols
        guard let value = t.value(name) else {
            if required {
                report(t.key(name), "missing required key \"\(name)\"", fix: "add `\(name) = \"<number> <unit>\"` with a unit of \(units)")
            }
            return nil
        }
        guard let text = value.string else {
            report(t.key(name), "\"\(name)\" must be a quoted \(Q.Unit.dimensionName) with its unit, not a bare \(value.type)",
                   fix: "write it as \"\(value.debugDescription) \(Q.Unit.canonical.symbol)\" (units: \(units))")
            return nil
        }
        let quantity: Q
        do {
            quantity = try Q.parse(text)
        } catch {
            let example = range.map { ", e.g. \"\($0.lowerBound.formatted())\"" } ?? ""
            report(t.key(name), error.description, fix: "write \"<number> <unit>\" with a unit of \(units)\(example)")
            return nil
        }
        if let range, !range.contains(quantity) {
            let low = range.lowerBound.formatted(), high = range.upperBound.formatted()
            report(t.key(name), "\(quantity.formatted()) is outside the accepted range \(low) to \(high)", fix: "use a value from \(low) to \(high)")
            return nil
        }
        return quantity
    }

    /// A duration written as a quoted number with its unit ("40 s", "12 min", "4 h"): never negative,
    /// and longer than zero unless `allowZero`. Reports it when missing (if `required`), unquoted, without
    /// a time unit, negative, or zero when not allowed.
    public mutating func duration(_ t: inout Table, _ name: String, required: Bool = true, allowZero: Bool = false) -> Duration? {
        guard let value = t.value(name) else {
            if required { report(t.key(name), "missing required key \"\(name)\"", fix: "add `\(name) = \"<number> s|min|h\"` to \(t.header)") }
            return nil
        }
        guard let text = value.string else {
            report(t.key(name), "\"\(name)\" must be a quoted duration with its unit, not a bare \(value.type)",
                   fix: "write it as \"\(value.debugDescription) s\", \"… min\" or \"… h\"")
            return nil
        }
        let duration: Duration
        do {
            duration = try Duration.parse(text)
        } catch {
            let fix: String
            if case .negative = error {
                fix = "durations are lengths and times count from the start: use a value of 0 or more"
            } else {
                fix = "write \"<number> <unit>\" with a unit of \(DurationUnit.acceptedSymbols), e.g. \"40 s\" or \"12 min\""
            }
            report(t.key(name), error.description, fix: fix)
            return nil
        }
        if duration == .zero && !allowZero {
            report(t.key(name), "\"\(name)\" must be longer than zero", fix: "give it a positive length, e.g. \"30 s\"")
            return nil
        }
        return duration
    }

    // MARK: Relations

    /// Checks that the present values are in non-decreasing order (`a ≤ b ≤ c`), reporting each
    /// neighbouring pair out of order at the first key of the pair as "A is above B". `why`, when given,
    /// follows the rule in the fix.
    public mutating func checkOrder<V: Comparable>(_ t: Table, _ values: [(String, V?)], why: String? = nil) {
        let present = values.compactMap { name, value in value.map { (name, $0) } }
        let rule = values.map(\.0).joined(separator: " ≤ ")
        for (lower, upper) in zip(present, present.dropFirst()) where lower.1 > upper.1 {
            report(t.key(lower.0), "\(lower.0) is above \(upper.0)", fix: "the values must satisfy \(rule)" + (why.map { "; \($0)" } ?? ""))
        }
    }
}
