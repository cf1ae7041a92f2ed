import Foundation
import Testing
@testable import InfusionCore

@Suite("Strict TOML toolkit")
struct StrictTOMLTests {
    /// Parses `text` (which must be valid TOML), runs `body` on it and returns what it reported.
    func issues(
        _ text: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (inout StrictTOMLReader, inout StrictTOMLReader.Table) -> Void
    ) -> [ConfigIssue] {
        do {
            var root = try StrictTOMLReader.parse(text: text, source: "t.toml", subject: "test")
            var reader = StrictTOMLReader(text: text, source: "t.toml")
            body(&reader, &root)
            return reader.issues
        } catch {
            Issue.record("not valid TOML: \(error)", sourceLocation: sourceLocation)
            return []
        }
    }

    @Test("an issue reads FILE:LINE: KEY: problem. Fix: …, leaving out what is unknown")
    func issueFormat() {
        #expect(ConfigIssue(file: "a.toml", line: 3, key: "patient.weight", problem: "too heavy", fix: "weigh again").description
            == "a.toml:3: patient.weight: too heavy. Fix: weigh again")
        #expect(ConfigIssue(file: "a.toml", line: nil, key: "format", problem: "p", fix: "f").description == "a.toml: format: p. Fix: f")
        #expect(ConfigIssue(file: "<built-in>", line: 7, key: nil, problem: "p", fix: "f").description == "<built-in>:7: p. Fix: f")
    }

    @Test("a load error names the subject and lists every issue; file order keeps same-line issues in found order")
    func loadError() {
        let a = ConfigIssue(file: "f", line: 9, key: "a", problem: "late", fix: "x")
        let b = ConfigIssue(file: "f", line: 2, key: "b", problem: "first on 2", fix: "x")
        let c = ConfigIssue(file: "f", line: 2, key: "c", problem: "second on 2", fix: "x")
        let d = ConfigIssue(file: "f", line: nil, key: nil, problem: "whole file", fix: "x")
        #expect(ConfigLoadError.inFileOrder([a, b, c, d]) == [d, b, c, a])
        let one = ConfigLoadError(subject: "scenario", issues: [a])
        #expect(one.description == "scenario refused (1 problem):\n  - f:9: a: late. Fix: x")
        let two = ConfigLoadError(subject: "drug library", issues: [b, c])
        #expect(two.description == "drug library refused (2 problems):\n  - f:2: b: first on 2. Fix: x\n  - f:2: c: second on 2. Fix: x")
    }

    static let nested = """
        # A comment with name = "not a key"
        format = 1

        [library]
        name = "x"

        [[profile]]
        id = "a"

        [profile.alarms]
        audio_pause_max = "120 s"

        [[profile.drug]]
        name = "first"

        [[profile.drug]]
          name = "second"

        [[profile]]
        id = "b"

        [[profile.drug]]
        name = "third"

        [profile.alarms]
        audio_pause_max = "60 s"

        [profile.deep.er]
        key = 1
        """

    @Test("the locator follows [[array]] elements, sub-tables of the latest element and nested arrays")
    func locator() {
        let locator = TOMLKeyLocator(text: Self.nested)
        #expect(locator.line(of: "format") == 2)
        #expect(locator.line(of: "library") == 4)
        #expect(locator.line(of: "library.name") == 5)
        #expect(locator.line(of: "profile[0]") == 7)
        #expect(locator.line(of: "profile[0].id") == 8)
        #expect(locator.line(of: "profile[0].alarms.audio_pause_max") == 11)
        #expect(locator.line(of: "profile[0].drug[0].name") == 14)
        #expect(locator.line(of: "profile[0].drug[1].name") == 17)
        #expect(locator.line(of: "profile[1].id") == 20)
        #expect(locator.line(of: "profile[1].drug[0]") == 22)
        #expect(locator.line(of: "profile[1].drug[0].name") == 23)
        #expect(locator.line(of: "profile[1].alarms.audio_pause_max") == 26)
        #expect(locator.line(of: "profile[1].deep.er.key") == 29)
        // Not written in the file: the nearest enclosing table, or nothing.
        #expect(locator.line(of: "profile[0].drug[1].dose_unit") == 16)
        #expect(locator.line(of: "profile[1].drug[3].name") == 19)
        #expect(locator.line(of: "nowhere.at.all") == nil)
        // The comment's "name =" is not taken for a key.
        #expect(locator.line(of: "name") == nil)
    }

    @Test("issues carry the located line and the table header as written")
    func locatedIssues() throws {
        let found = issues(Self.nested) { reader, root in
            for var profile in reader.tableArray(&root, "profile") {
                for var drug in reader.tableArray(&profile, "drug") {
                    _ = reader.string(&drug, "dose_unit")
                }
            }
        }
        let second = try #require(found.first { $0.key == "profile[0].drug[1].dose_unit" })
        #expect(second.line == 16 && second.file == "t.toml")
        #expect(second.fix == "add `dose_unit = \"…\"` to [[profile.drug]]")
        #expect(found.count == 3)
    }

    @Test("unknown keys get the nearest allowed key within 3 edits, or none; keys of other kinds say where they belong")
    func unknownKeys() throws {
        let text = "format = 1\nspo2_pause_hld = \"15 s\"\ncolour = \"blue\"\n[patient]\nwieght = \"80 kg\"\nhold = \"1 min\"\n"
        let found = issues(text) { reader, root in
            if let patient = reader.subtable(&root, "patient") {
                reader.finish(patient, allowed: ["weight", "spo2"], elsewhere: ["hold": "\"hold\" is for desaturation events"])
            }
            root.markUsed("format")
            reader.finish(root, allowed: ["format", "spo2_pause_hold", "patient"])
        }
        let hld = try #require(found.first { $0.key == "spo2_pause_hld" })
        #expect(hld.problem == "unknown key \"spo2_pause_hld\" in the top level")
        #expect(hld.fix == "did you mean \"spo2_pause_hold\"? remove it or use one of: format, spo2_pause_hold, patient")
        #expect(hld.line == 2)
        let colour = try #require(found.first { $0.key == "colour" })
        #expect(!colour.fix.contains("did you mean"))
        let wieght = try #require(found.first { $0.key == "patient.wieght" })
        #expect(wieght.problem.hasSuffix("in [patient]") && wieght.fix.hasPrefix("did you mean \"weight\"?") && wieght.line == 5)
        let hold = try #require(found.first { $0.key == "patient.hold" })
        #expect(hold.problem == "\"hold\" does not apply here")
        #expect(hold.fix == "\"hold\" is for desaturation events; in [patient] use only: weight, spo2")
        #expect(found.count == 4)
        #expect(StrictTOMLReader.editDistance("kitten", "sitting") == 3)
        #expect(StrictTOMLReader.editDistance("", "abc") == 3 && StrictTOMLReader.editDistance("abc", "") == 3)
        #expect(StrictTOMLReader.suggestion(for: "zzzzzz", among: ["weight"]) == nil)
    }

    @Test("strings, booleans, integers and numbers: missing, wrong type, blank and out of range are reported")
    func plainGetters() throws {
        let text = """
            text = 3
            blank = "  "
            flag = "yes"
            count = 1.5
            seed = -3
            ratio = "0.5"
            big = 12
            ok = "fine"
            on = true
            n = 7
            x = 2
            y = 0.25
            """
        var values: [String: String] = [:]
        let found = issues(text) { reader, t in
            #expect(reader.string(&t, "text") == nil)
            #expect(reader.string(&t, "blank", required: false) == nil)
            #expect(reader.string(&t, "absent") == nil)
            #expect(reader.string(&t, "absent_optional", required: false) == nil)
            #expect(reader.bool(&t, "flag") == nil)
            #expect(reader.integer(&t, "count") == nil)
            #expect(reader.integer(&t, "seed", in: 0...Int.max) == nil)
            #expect(reader.number(&t, "ratio") == nil)
            #expect(reader.number(&t, "big", in: 0...10) == nil)
            values["ok"] = reader.string(&t, "ok")
            values["on"] = reader.bool(&t, "on").map { "\($0)" }
            values["n"] = reader.integer(&t, "n", in: 1...10).map { "\($0)" }
            values["x"] = reader.number(&t, "x").map { "\($0)" }
            values["y"] = reader.number(&t, "y", in: 0...1).map { "\($0)" }
            reader.finish(t, allowed: [])
        }
        #expect(values == ["ok": "fine", "on": "true", "n": "7", "x": "2.0", "y": "0.25"])
        func issue(_ key: String) throws -> ConfigIssue { try #require(found.first { $0.key == key }) }
        #expect(try issue("text").problem == "\"text\" must be a string, not an integer" && issue("text").fix == "write it in double quotes")
        #expect(try issue("blank").problem == "\"blank\" is empty" && issue("blank").fix.contains("remove the key"))
        #expect(try issue("absent").problem == "missing required key \"absent\"" && issue("absent").fix == "add `absent = \"…\"` to the top level")
        #expect(!found.contains { $0.key == "absent_optional" })
        #expect(try issue("flag").problem == "\"flag\" must be true or false, not \"yes\"" && issue("flag").fix.contains("no quotes"))
        #expect(try issue("count").problem == "\"count\" must be a whole number, not 1.5")
        #expect(try issue("seed").problem == "\"seed\" must be a whole number of 0 or more, not -3" && issue("seed").fix.contains("`seed = 1`"))
        #expect(try issue("ratio").problem == "\"ratio\" must be a number, not \"0.5\"" && issue("ratio").fix.contains("without quotes"))
        #expect(try issue("big").problem == "12 is outside the accepted range 0 to 10" && issue("big").fix == "use a value from 0 to 10")
        #expect(found.allSatisfy { $0.line != nil || $0.key == "absent" })
        #expect(found.count == 8) // nothing reported as unknown: every key was asked for
    }

    @Test("quantities: any PhysicalQuantity, with its unit, in range; durations: never negative, zero only when allowed")
    func quantityGetters() throws {
        let text = """
            weight = 80
            rate = "1 mg/kg/h"
            spo2 = "120 %"
            pulse = "72"
            volume = "20 mL"
            pi = "3 %"
            at = 12
            onset = "-40 s"
            hold = "0 s"
            gap = "0 s"
            length = "40 kg"
            ok = "90 s"
            """
        var read: (Volume?, Percentage?, Duration?, Duration?) = (nil, nil, nil, nil)
        let found = issues(text) { reader, t in
            #expect(reader.quantity(&t, "weight", BodyWeight.self) == nil)
            #expect(reader.quantity(&t, "rate", VolumeRate.self) == nil)
            #expect(reader.quantity(&t, "spo2", Percentage.self, in: .percent(50)...(.percent(100))) == nil)
            #expect(reader.quantity(&t, "pulse", PulseRate.self, in: .beatsPerMinute(20)...(.beatsPerMinute(250))) == nil)
            #expect(reader.quantity(&t, "missing", Concentration.self) == nil)
            read.0 = reader.quantity(&t, "volume", Volume.self)
            read.1 = reader.quantity(&t, "pi", Percentage.self, required: false, in: .percent(0.02)...(.percent(20)))
            #expect(reader.duration(&t, "at") == nil)
            #expect(reader.duration(&t, "onset", allowZero: true) == nil)
            #expect(reader.duration(&t, "hold") == nil)
            read.2 = reader.duration(&t, "gap", allowZero: true)
            #expect(reader.duration(&t, "length") == nil)
            read.3 = reader.duration(&t, "ok")
            #expect(reader.duration(&t, "absent", required: false) == nil)
            reader.finish(t, allowed: [])
        }
        #expect(read.0 == .millilitres(20) && read.1 == .percent(3) && read.2 == .zero && read.3 == .seconds(90))
        func issue(_ key: String) throws -> ConfigIssue { try #require(found.first { $0.key == key }) }
        let weight = try issue("weight")
        #expect(weight.problem == "\"weight\" must be a quoted body weight with its unit, not a bare integer")
        #expect(weight.fix.hasPrefix("write it as \"80 kg\""))
        #expect(try issue("rate").problem.contains("unknown unit \"mg/kg/h\"") && issue("rate").fix.contains("mL/h"))
        #expect(try issue("spo2").problem == "120 % is outside the accepted range 50 % to 100 %" && issue("spo2").fix == "use a value from 50 % to 100 %")
        #expect(try issue("pulse").problem.contains("no unit") && issue("pulse").fix.hasSuffix("e.g. \"20 bpm\""))
        #expect(try issue("missing").problem == "missing required key \"missing\"" && issue("missing").fix.contains("mg/mL"))
        #expect(try issue("at").problem.contains("not a bare integer") && issue("at").fix.contains("\"12 s\""))
        #expect(try issue("onset").problem.contains("cannot be negative") && issue("onset").fix.contains("0 or more"))
        #expect(try issue("hold").problem == "\"hold\" must be longer than zero")
        #expect(try issue("length").problem.contains("unknown unit \"kg\"") && issue("length").fix.contains("s, min, h"))
        #expect(try issue("weight").line == 1 && issue("length").line == 11)
        #expect(found.count == 9)
    }

    @Test("sub-tables and arrays of tables: missing, of the wrong kind, or empty")
    func tables() throws {
        let text = """
            scalar = 3
            notarray = "x"
            list = [1, 2]
            mixed = [{ a = 1 }, 2]

            [[entry]]
            a = 1

            [[entry]]
            a = 2
            """
        let found = issues(text) { reader, root in
            #expect(reader.subtable(&root, "scalar") == nil)
            #expect(reader.subtable(&root, "absent") == nil)
            #expect(reader.subtable(&root, "optional", required: false) == nil)
            #expect(reader.tableArray(&root, "notarray").isEmpty)
            #expect(reader.tableArray(&root, "list").isEmpty)
            #expect(reader.tableArray(&root, "mixed").map(\.path) == ["mixed[0]"])
            #expect(reader.tableArray(&root, "none").isEmpty)
            #expect(reader.tableArray(&root, "optional_list", required: false).isEmpty)
            let entries = reader.tableArray(&root, "entry")
            #expect(entries.map(\.path) == ["entry[0]", "entry[1]"])
            #expect(entries.first?.header == "[[entry]]")
            if let first = entries.first { reader.finish(first, allowed: ["b"]) }
            if var second = entries.last {
                #expect(reader.integer(&second, "a") == 2)
                reader.finish(second, allowed: ["a"])
            }
            reader.finish(root, allowed: ["scalar", "list", "mixed", "entry"])
        }
        func issue(_ key: String) throws -> ConfigIssue { try #require(found.first { $0.key == key }) }
        #expect(try issue("scalar").problem == "\"scalar\" must be a table, not an integer")
        #expect(try issue("absent").problem == "missing table [absent]" && issue("absent").fix == "add a [absent] table")
        #expect(try issue("notarray").problem == "\"notarray\" must be an array of tables" && issue("notarray").fix == "write each entry as [[notarray]]")
        #expect(try issue("list[0]").problem == "entry 0 of \"list\" is not a table" && issue("list[1]").line == 3)
        #expect(found.allSatisfy { $0.line != nil || ["absent", "none"].contains($0.key) })
        #expect(try issue("list").problem == "no list entries" && issue("list").fix == "add at least one [[list]] table")
        #expect(try issue("mixed[1]").problem == "entry 1 of \"mixed\" is not a table")
        #expect(try issue("none").problem == "missing [[none]] entries")
        #expect(!found.contains { $0.key == "optional" || $0.key == "optional_list" })
        // entry[0] did not ask for its key, so it is unknown; entry[1] read it.
        #expect(try issue("entry[0].a").problem == "unknown key \"a\" in [[entry]]" && issue("entry[0].a").line == 7)
        #expect(found.count == 9)
        #expect(StrictTOMLReader.written("profile[0].drug[12].name") == "profile.drug.name")
    }

    @Test("order checks report each neighbouring pair out of order at its first key")
    func order() throws {
        let found = issues("[limits]\nlow = 1\nmid = 5\nhigh = 3\n") { reader, root in
            guard let limits = reader.subtable(&root, "limits") else { return }
            reader.checkOrder(limits, [("low", 1), ("absent", nil), ("mid", 5), ("high", 3)], why: "because")
            reader.checkOrder(limits, [("low", 1), ("mid", 5)])
        }
        let issue = try #require(found.first)
        #expect(found.count == 1)
        #expect(issue.key == "limits.mid" && issue.line == 3 && issue.problem == "mid is above high")
        #expect(issue.fix == "the values must satisfy low ≤ absent ≤ mid ≤ high; because")
    }

    @Test("read: syntax errors name the line; every issue is thrown in file order; format is checked")
    func read() throws {
        #expect(throws: ConfigLoadError.self) { try StrictTOMLReader.read(text: "a = [", source: "s", subject: "x", unreadableFix: "f") { _, _ in 1 } }
        do {
            _ = try StrictTOMLReader.read(text: "format = 1\n[t\n", source: "s.toml", subject: "thing", unreadableFix: "f") { _, _ in 1 }
            Issue.record("accepted")
        } catch {
            #expect(error.subject == "thing" && error.issues.count == 1 && error.issues[0].line == 2)
            #expect(error.issues[0].problem.hasPrefix("not valid TOML"))
        }
        do {
            _ = try StrictTOMLReader.read(text: "format = 2\nb = 1\na = 1\n", source: "s.toml", subject: "thing", unreadableFix: "f") { reader, root in
                root.markUsed("format")
                reader.finish(root, allowed: ["format"])  // reports a (line 3) and b (line 2), sorted by key
                reader.checkFormat(&root, supported: 1)  // line 1, found last
                return 1
            }
            Issue.record("accepted")
        } catch {
            #expect(error.issues.map(\.key) == ["format", "b", "a"])
            #expect(error.issues[0].problem == "unsupported format 2")
            #expect(error.description.hasPrefix("thing refused (3 problems):\n  - s.toml:1: format: "))
        }
        do {
            _ = try StrictTOMLReader.read(text: "x = 1\n", source: "s.toml", subject: "thing", unreadableFix: "see the docs") { reader, root in
                reader.checkFormat(&root, supported: 1)
                root.markAllUsed()
                reader.finish(root, allowed: [])
                return Optional<Int>.none
            }
            Issue.record("accepted")
        } catch {
            #expect(error.issues.count == 1 && error.issues[0].problem == "missing required key \"format\"")
        }
        do {
            _ = try StrictTOMLReader.read(text: "", source: "s.toml", subject: "thing", unreadableFix: "see the docs") { _, _ in Optional<Int>.none }
            Issue.record("accepted")
        } catch {
            #expect(error.issues == [ConfigIssue(file: "s.toml", line: nil, key: nil, problem: "the thing could not be read", fix: "see the docs")])
        }
        let value = try StrictTOMLReader.read(text: "format = 1\n", source: "s", subject: "x", unreadableFix: "f") { reader, root in
            reader.checkFormat(&root, supported: 1)
            reader.finish(root, allowed: ["format"])
            return 42
        }
        #expect(value == 42)
    }
}
