/// One problem found while reading a configuration file (a drug library, a scenario…): where it is,
/// what is wrong, and how to fix it. A value; any thread.
public struct ConfigIssue: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file (a path, or a placeholder such as "<built-in>" for text that came from elsewhere).
    public let file: String
    /// 1-based line of the key or table, when it could be located.
    public let line: Int?
    /// The key's path, such as `profile[0].drug[1].name`, when the problem is one key or table.
    public let key: String?
    /// What is wrong.
    public let problem: String
    /// What to do about it.
    public let fix: String

    /// An issue at `file`, optionally at `line` and `key`.
    public init(file: String, line: Int?, key: String?, problem: String, fix: String) {
        self.file = file
        self.line = line
        self.key = key
        self.problem = problem
        self.fix = fix
    }

    /// "FILE:LINE: KEY: problem. Fix: fix" (the line and key parts only when known).
    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let key { location += ": \(key)" }
        return "\(location): \(problem). Fix: \(fix)"
    }
}

/// Why a configuration file was refused: every problem found. A file with any problem is never used,
/// not even in part. A value; any thread.
public struct ConfigLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was refused, for the summary line: "drug library", "scenario".
    public let subject: String
    /// Every problem found, in file order where possible.
    public let issues: [ConfigIssue]

    /// A refusal of `subject` for `issues`, kept in the order given (see `inFileOrder(_:)`).
    public init(subject: String, issues: [ConfigIssue]) {
        self.subject = subject
        self.issues = issues
    }

    /// "SUBJECT refused (N problems):" then one problem per line.
    public var description: String {
        "\(subject) refused (\(issues.count) problem\(issues.count == 1 ? "" : "s")):\n"
            + issues.map { "  - \($0)" }.joined(separator: "\n")
    }

    /// `issues` sorted by line (issues without a line first), keeping the order in which issues on the
    /// same line were found.
    public static func inFileOrder(_ issues: [ConfigIssue]) -> [ConfigIssue] {
        issues.enumerated()
            .sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }
            .map(\.element)
    }
}
