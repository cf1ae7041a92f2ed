import Foundation

/// Finds the 1-based line of a key path such as `profile[0].drug[1].name` in TOML text, by following
/// table headers (`[a]`, `[a.b]`, `[[a]]`, `[[a.b]]`) and `key = value` lines.
///
/// Paths use the reader's spelling (`StrictTOMLReader`): keys joined by dots, elements of arrays of
/// tables as `name[index]`. A sub-table or nested array of tables belongs to the latest element of its
/// parent array: after `[[profile]]` twice, `[profile.alarms]` is `profile[1].alarms` and each
/// `[[profile.drug]]` counts from 0 again. Good enough for messages (no multi-line strings or quoted
/// dotted keys); `line(of:)` falls back to the nearest enclosing table. A value; any thread.
public struct TOMLKeyLocator: Hashable, Sendable {
    private var lineOfPath: [String: Int] = [:]

    /// Indexes every table header and key line of `text`. Pure.
    public init(text: String) {
        var counts: [String: Int] = [:]  // indexed path of an array of tables (parent indices included) -> elements so far
        var indexedHeaders: [String: String] = [:]  // header as written ("profile.drug") -> indexed path of its latest element
        var prefix = ""
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[["), let end = line.range(of: "]]") {
                let name = line[line.index(line.startIndex, offsetBy: 2)..<end.lowerBound].trimmingCharacters(in: .whitespaces)
                let base = Self.indexed(name, headers: indexedHeaders)
                let index = counts[base, default: 0]
                counts[base] = index + 1
                prefix = "\(base)[\(index)]"
                indexedHeaders[name] = prefix
                record(prefix, number)
            } else if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                let name = line[line.index(after: line.startIndex)..<end].trimmingCharacters(in: .whitespaces)
                prefix = Self.indexed(name, headers: indexedHeaders)
                indexedHeaders[name] = prefix
                record(prefix, number)
            } else if let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                record(prefix.isEmpty ? key : "\(prefix).\(key)", number)
            }
        }
    }

    private mutating func record(_ path: String, _ offset: Int) {
        if lineOfPath[path] == nil { lineOfPath[path] = offset + 1 }
    }

    /// The indexed path of a header as written: its parent replaced by the parent's latest element.
    private static func indexed(_ dotted: String, headers: [String: String]) -> String {
        guard let dot = dotted.lastIndex(of: ".") else { return dotted }
        let parent = String(dotted[..<dot])
        return "\(headers[parent] ?? indexed(parent, headers: headers)).\(dotted[dotted.index(after: dot)...])"
    }

    /// The line of `path`, or of its nearest enclosing table or array that was found (`list[3]` falls back
    /// to `list`); nil when none was.
    public func line(of path: String) -> Int? {
        var candidate = path[...]
        while true {
            if let line = lineOfPath[String(candidate)] { return line }
            if candidate.hasSuffix("]"), let open = candidate.lastIndex(of: "[") {
                candidate = candidate[..<open]
            } else if let dot = candidate.lastIndex(of: ".") {
                candidate = candidate[..<dot]
            } else {
                return nil
            }
        }
    }
}
