import Crypto
import Foundation
import TOMLKit

/// One problem found while loading a drug library: where it is, what is wrong, and how to fix it.
public struct DrugLibraryIssue: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file (path or "<built-in>").
    public let file: String
    /// 1-based line of the key or table, when it could be located.
    public let line: Int?
    /// The key's path, such as `profile[0].drug[0].dose_rate_hard_max`, when the problem is one key.
    public let key: String?
    /// What is wrong.
    public let problem: String
    /// What to do about it.
    public let fix: String

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let key { location += ": \(key)" }
        return "\(location): \(problem). Fix: \(fix)"
    }
}

/// Why a drug library was refused. A library with any problem is never used, not even in part.
public struct DrugLibraryLoadError: Error, Sendable, CustomStringConvertible {
    /// Every problem found, in file order where possible.
    public let issues: [DrugLibraryIssue]

    public var description: String {
        "drug library refused (\(issues.count) problem\(issues.count == 1 ? "" : "s")):\n"
            + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension DrugLibrary {
    /// The only supported value of the top-level `format` key.
    public static let formatVersion = 1

    /// Loads and validates a drug library from its TOML text (format: docs/drug-library.md).
    ///
    /// Checks, in order: TOML syntax; the `sha256` in `[library]` against the SHA-256 of the text without
    /// that line; then every table and key: unknown keys, wrong types, units of the wrong dimension,
    /// negative or zero limits, soft limits beyond hard ones, duplicate profiles, drugs and
    /// concentrations. Every problem is reported with the file, line, key and the fix; a library with any
    /// problem is refused whole. Pure: `source` is only used in messages.
    public static func load(text: String, source: String) throws(DrugLibraryLoadError) -> DrugLibrary {
        let locator = KeyLocator(text: text)
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw DrugLibraryLoadError(issues: [DrugLibraryIssue(
                file: source, line: error.source.begin.line, key: nil,
                problem: "not valid TOML: \(error.description)",
                fix: "correct the syntax at that line (strings need double quotes, tables [name], arrays of tables [[name]])")])
        } catch {
            throw DrugLibraryLoadError(issues: [DrugLibraryIssue(
                file: source, line: nil, key: nil, problem: "not valid TOML: \(error)", fix: "correct the file's syntax")])
        }

        var reader = LibraryReader(source: source, locator: locator)
        let checksum = LibraryChecksum.verify(text: text, source: source)
        let library = reader.readLibrary(table, checksum: checksum)
        let issues = checksum.issues + reader.issues
        if !issues.isEmpty { throw DrugLibraryLoadError(issues: issues.sorted { ($0.line ?? 0) < ($1.line ?? 0) }) }
        guard let library else {
            throw DrugLibraryLoadError(issues: [DrugLibraryIssue(
                file: source, line: nil, key: nil, problem: "the library could not be read", fix: "check the file against docs/drug-library.md")])
        }
        return library
    }
}

// MARK: - Checksum

/// The library checksum: SHA-256 of the file's bytes with the `sha256 = "…"` line removed.
public enum LibraryChecksum {
    /// The lowercase hex SHA-256 of `text` without its `sha256` line (the line and its newline removed).
    public static func compute(text: String) -> String {
        let content = lines(of: text).filter { !isChecksumLine($0) }.joined()
        return SHA256.hash(data: Data(content.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Returns `text` with its `sha256` line set to the checksum of the rest (added under `[library]`
    /// when missing). This is what `infusionctl library seal` writes after an approved edit.
    public static func seal(text: String) -> String {
        let hash = compute(text: text)
        var result: [String] = []
        var written = false
        for line in lines(of: text) {
            if isChecksumLine(line) {
                if !written { result.append("sha256 = \"\(hash)\"\n"); written = true }
                continue
            }
            result.append(line)
            if !written, line.trimmingCharacters(in: .whitespacesAndNewlines) == "[library]" {
                result.append("sha256 = \"\(hash)\"\n")
                written = true
            }
        }
        return result.joined()
    }

    struct Outcome {
        var issues: [DrugLibraryIssue] = []
        var computed: String
    }

    static func verify(text: String, source: String) -> Outcome {
        let computed = compute(text: text)
        var outcome = Outcome(computed: computed)
        let all = lines(of: text)
        let checksumLines = all.indices.filter { isChecksumLine(all[$0]) }
        let fix = "after the change has been reviewed and approved, run `infusionctl library seal \(source)`"
        guard let index = checksumLines.first else {
            outcome.issues.append(DrugLibraryIssue(
                file: source, line: nil, key: "library.sha256", problem: "the library has no sha256 checksum", fix: fix))
            return outcome
        }
        if checksumLines.count > 1 {
            outcome.issues.append(DrugLibraryIssue(
                file: source, line: checksumLines[1] + 1, key: "library.sha256",
                problem: "more than one sha256 line", fix: "keep a single sha256 line in [library]"))
        }
        let line = all[index]
        let written = line.split(separator: "\"").dropFirst().first.map(String.init) ?? ""
        if written.lowercased() != computed {
            outcome.issues.append(DrugLibraryIssue(
                file: source, line: index + 1, key: "library.sha256",
                problem: "checksum mismatch: the file's content hashes to \(computed) but sha256 says \"\(written)\"; "
                    + "the library was changed or corrupted since it was sealed",
                fix: "restore the approved library, or \(fix)"))
        }
        return outcome
    }

    static func isChecksumLine(_ line: String) -> Bool {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        guard trimmed.hasPrefix("sha256") else { return false }
        return trimmed.dropFirst(6).drop { $0 == " " || $0 == "\t" }.hasPrefix("=")
    }

    /// Lines with their terminators kept, so joining them restores the exact text.
    static func lines(of text: String) -> [String] {
        var result: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if character == "\n" || character == "\r\n" {
                result.append(current)
                current = ""
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }
}

// MARK: - Locating keys

/// Finds the line of a key path such as `profile[0].drug[1].name` in the library text, by following
/// table headers (`[a.b]`, `[[a.b]]`) and `key = value` lines.
struct KeyLocator {
    private var lineOfPath: [String: Int] = [:]

    init(text: String) {
        var counters: [String: Int] = [:]  // array-of-tables header path (with parent indices) -> count
        var prefix = ""
        var headerPaths: [String: String] = [:] // plain dotted header -> indexed path of latest element
        for (offset, raw) in text.components(separatedBy: "\n").enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[[") , let end = line.range(of: "]]") {
                let name = String(line[line.index(line.startIndex, offsetBy: 2)..<end.lowerBound]).trimmingCharacters(in: .whitespaces)
                let parent = Self.indexedParent(of: name, headerPaths: headerPaths)
                let base = parent.isEmpty ? Self.last(name) : parent + "." + Self.last(name)
                let index = counters[base, default: 0]
                counters[base] = index + 1
                prefix = "\(base)[\(index)]"
                headerPaths[name] = prefix
                lineOfPath[prefix] = offset + 1
            } else if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                let name = String(line[line.index(after: line.startIndex)..<end]).trimmingCharacters(in: .whitespaces)
                let parent = Self.indexedParent(of: name, headerPaths: headerPaths)
                prefix = parent.isEmpty ? Self.last(name) : parent + "." + Self.last(name)
                headerPaths[name] = prefix
                lineOfPath[prefix] = offset + 1
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                let path = prefix.isEmpty ? key : prefix + "." + key
                if lineOfPath[path] == nil { lineOfPath[path] = offset + 1 }
            }
        }
    }

    private static func last(_ dotted: String) -> String { String(dotted.split(separator: ".").last ?? "") }

    private static func indexedParent(of dotted: String, headerPaths: [String: String]) -> String {
        let parts = dotted.split(separator: ".")
        guard parts.count > 1 else { return "" }
        let parent = parts.dropLast().joined(separator: ".")
        return headerPaths[parent] ?? parent
    }

    /// The line of `path`, or of its nearest enclosing table.
    func line(of path: String) -> Int? {
        var candidate = path
        while true {
            if let line = lineOfPath[candidate] { return line }
            guard let dot = candidate.lastIndex(of: ".") else { return nil }
            candidate = String(candidate[..<dot])
        }
    }
}
