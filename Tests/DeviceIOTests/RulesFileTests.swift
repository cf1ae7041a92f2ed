import Foundation
import Testing

@testable import DeviceIO

/// One `KEY[{attribute}] OPERATOR "value"` item of a udev rule.
struct RuleItem: Equatable, CustomStringConvertible {
    let key: String
    let attribute: String?
    let op: String
    let value: String
    var description: String { "\(key)\(attribute.map { "{\($0)}" } ?? "")\(op)\"\(value)\"" }
    var isMatch: Bool { op == "==" || op == "!=" }
}

/// A rule: its items and the line where it starts.
struct Rule {
    let line: Int
    let items: [RuleItem]
    func assignments(_ key: String, attribute: String? = nil) -> [RuleItem] {
        items.filter { $0.key == key && $0.attribute == attribute && !$0.isMatch }
    }
    func env(_ name: String) -> String? { assignments("ENV", attribute: name).last?.value }
}

enum RulesParseError: Error, CustomStringConvertible {
    case malformed(line: Int, text: String, why: String)
    var description: String {
        switch self {
        case .malformed(let line, let text, let why): "line \(line): \(why): \(text)"
        }
    }
}

/// A strict parser for the subset of udev rule syntax our file uses (see udev(7)).
enum RulesParser {
    static let matchKeys: Set<String> = [
        "ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
        "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST", "PROGRAM", "RESULT",
    ]
    static let assignKeys: Set<String> = [
        "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG", "RUN", "LABEL", "GOTO",
        "IMPORT", "OPTIONS",
    ]
    static let keysWithAttribute: Set<String> = ["ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TEST", "RUN", "IMPORT", "SECLABEL"]

    /// Joins continuation lines, skips comments and blank lines, and parses every rule.
    static func parse(_ text: String) throws -> [Rule] {
        var rules: [Rule] = []
        var pending = ""
        var pendingStart = 0
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = String(rawLine)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if pending.isEmpty {
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                pendingStart = lineNumber
            } else if trimmed.isEmpty || trimmed.hasPrefix("#") {
                throw RulesParseError.malformed(line: lineNumber, text: line, why: "a continuation line is blank or a comment")
            }
            if trimmed.hasSuffix("\\") {
                pending += String(trimmed.dropLast()) + " "
                continue
            }
            pending += trimmed
            rules.append(Rule(line: pendingStart, items: try parseRule(pending, line: pendingStart)))
            pending = ""
        }
        if !pending.isEmpty {
            throw RulesParseError.malformed(line: pendingStart, text: pending, why: "the file ends inside a continued rule")
        }
        return rules
    }

    static func parseRule(_ text: String, line: Int) throws -> [RuleItem] {
        var items: [RuleItem] = []
        var rest = Substring(text)
        func fail(_ why: String) -> RulesParseError { .malformed(line: line, text: text, why: why) }
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard let keyEnd = rest.firstIndex(where: { !($0.isUppercase || $0 == "_") }), keyEnd != rest.startIndex else {
                throw fail("expected a key at \"\(rest.prefix(20))\"")
            }
            let key = String(rest[..<keyEnd])
            rest = rest[keyEnd...]
            var attribute: String?
            if rest.first == "{" {
                guard let close = rest.firstIndex(of: "}") else { throw fail("unclosed {") }
                attribute = String(rest[rest.index(after: rest.startIndex)..<close])
                guard let attribute, !attribute.isEmpty, !attribute.contains(" ") else { throw fail("bad attribute name") }
                rest = rest[rest.index(after: close)...]
            }
            guard let op = ["==", "!=", "+=", "-=", ":=", "="].first(where: { rest.hasPrefix($0) }) else {
                throw fail("expected an operator after \(key)")
            }
            rest = rest.dropFirst(op.count)
            guard rest.first == "\"" else { throw fail("the value of \(key) is not double-quoted") }
            rest = rest.dropFirst()
            guard let closeQuote = rest.firstIndex(of: "\"") else { throw fail("unterminated value of \(key)") }
            let value = String(rest[..<closeQuote])
            rest = rest[rest.index(after: closeQuote)...]
            let item = RuleItem(key: key, attribute: attribute, op: op, value: value)
            let known = item.isMatch ? matchKeys.contains(key) : assignKeys.contains(key)
            guard known else { throw fail("\(key) cannot be used with \(op)") }
            guard (attribute != nil) == keysWithAttribute.contains(key) || key == "IMPORT" else {
                throw fail("\(key) \(attribute == nil ? "needs" : "takes no") {attribute}")
            }
            items.append(item)
            rest = rest.drop { $0 == " " || $0 == "\t" }
            if rest.isEmpty { break }
            guard rest.first == "," else { throw fail("expected a comma after \(item)") }
            rest = rest.dropFirst()
        }
        return items
    }
}

@Suite("udev rules file")
struct RulesFileTests {
    static var rulesURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("udev/70-infusion-devices.rules")
    }

    static func loadRules() throws -> [Rule] {
        try RulesParser.parse(String(contentsOf: rulesURL, encoding: .utf8))
    }

    @Test("every rule line is well formed: keys, operators, quoted values, continuations")
    func wellFormed() throws {
        let rules = try Self.loadRules()
        #expect(rules.count >= 10)
        // Every GOTO has its LABEL, and every LABEL is used.
        let labels = Set(rules.flatMap { $0.assignments("LABEL") }.map(\.value))
        let gotos = Set(rules.flatMap { $0.assignments("GOTO") }.map(\.value))
        #expect(gotos == labels)
        // Each rule either matches something or only jumps.
        for rule in rules where !rule.items.contains(where: { $0.key == "LABEL" || $0.key == "GOTO" }) {
            let matchesSomething = rule.items.contains(where: \.isMatch)
            #expect(matchesSomething, "rule at line \(rule.line) matches nothing: it would apply to every device")
        }
    }

    @Test("the parser rejects malformed lines (so the test above can fail)")
    func parserIsStrict() {
        let bad = [
            "KERNEL==ttyUSB0, MODE=\"0660\"",  // unquoted value
            "KERNEL==\"ttyUSB0\" MODE=\"0660\"",  // missing comma
            "ENV{INFUSION_ROLE}==\"pump\", GROUP==\"infusion\"",  // GROUP cannot be matched
            "MODE=\"0660\", ENV=\"x\"",  // ENV needs an attribute
            "SUBSYSTEM=\"tty\"",  // SUBSYSTEM cannot be assigned
            "ATTRS{idVendor}==\"0403\", \\",  // file ends inside a continuation
            "FOO==\"bar\"",
        ]
        for text in bad {
            #expect(throws: RulesParseError.self, "\(text)") { try RulesParser.parse(text) }
        }
        #expect(throws: RulesParseError.self) { try RulesParser.parse("KERNEL==\"x\", \\\n# comment\n  MODE=\"0660\"") }
    }

    @Test("the INFUSION_* properties the rules set are exactly the ones the classifier reads")
    func propertiesMatchClassifier() throws {
        let rules = try Self.loadRules()
        let setByRules = Set(rules.flatMap { rule in
            rule.items.filter { $0.key == "ENV" && !$0.isMatch && ($0.attribute ?? "").hasPrefix("INFUSION_") }.compactMap(\.attribute)
        })
        #expect(setByRules == DeviceClassifier.infusionProperties)
        // Nothing matches on an INFUSION_ property either (they are outputs of these rules).
        let matched = rules.flatMap(\.items).filter { $0.isMatch && ($0.attribute ?? "").hasPrefix("INFUSION_") }
        #expect(matched.isEmpty)
    }

    @Test("every configuring rule classifies as configured and carries group, mode, ModemManager opt-out, tag and a stable link")
    func configuringRules() throws {
        let rules = try Self.loadRules()
        var section = ""
        var protocolsBySubsystem: [String: Set<DeviceProtocolName>] = [:]
        for rule in rules {
            if let label = rule.assignments("LABEL").first?.value { section = label }
            guard rule.env("INFUSION_PROTOCOL") != nil else { continue }
            let subsystem = section == "infusion_hidraw" ? "hidraw" : "tty"
            var properties = ["SUBSYSTEM": subsystem]
            for item in rule.items where item.key == "ENV" && !item.isMatch {
                if let name = item.attribute { properties[name] = item.value }
            }
            let result = DeviceClassifier.classify(properties)
            guard case .configured(let device) = result else {
                Issue.record("rule at line \(rule.line) classifies as \(result)")
                continue
            }
            protocolsBySubsystem[subsystem, default: []].insert(device.protocolName)
            #expect(rule.assignments("GROUP").map(\.value) == ["infusion"], "line \(rule.line)")
            #expect(rule.assignments("MODE").map(\.value) == ["0660"], "line \(rule.line)")
            #expect(rule.env("ID_MM_DEVICE_IGNORE") == "1", "line \(rule.line)")
            #expect(rule.items.contains(RuleItem(key: "TAG", attribute: nil, op: "+=", value: "infusion")), "line \(rule.line)")
            let links = rule.assignments("SYMLINK").filter { $0.op == "+=" }.map(\.value)
            #expect(links.count == 1, "line \(rule.line)")
            #expect(links.allSatisfy { $0.hasPrefix("infusion/\(device.role.linkPrefix)") }, "line \(rule.line): \(links)")
            // Matches on a specific device: a serial number, a port path, or (HID) ids unique to the product.
            let matchKeys = Set(rule.items.filter(\.isMatch).map { $0.attribute ?? $0.key })
            #expect(!matchKeys.isDisjoint(with: ["ID_SERIAL_SHORT", "ID_PATH", "idProduct"]), "line \(rule.line)")
        }
        // One example per family.
        let serial = protocolsBySubsystem["tty"] ?? []
        #expect(serial.isSuperset(of: [.newEra, .alaris, .fresenius, .masimo, .contec, .mtSics]))
        #expect(!serial.isDisjoint(with: [.noninDF2, .noninDF7, .noninDF8]))
        #expect(protocolsBySubsystem["hidraw"] == [.contec])
    }
}
