import CLibCrypto
import Foundation

/// One problem found while loading a drug library: where it is, what is wrong, and how to fix it
/// ("FILE:LINE: KEY: problem. Fix: …"). The shared strict-TOML issue type.
public typealias DrugLibraryIssue = ConfigIssue

/// Why a drug library was refused ("drug library refused (N problems): …"), with every problem found.
/// A library with any problem is never used, not even in part. The shared strict-TOML load error.
public typealias DrugLibraryLoadError = ConfigLoadError

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
        try StrictTOMLReader.read(
            text: text, source: source, subject: "drug library", unreadableFix: "check the file against docs/drug-library.md"
        ) { reader, root in
            let checksum = LibraryChecksum.verify(text: text, source: source)
            checksum.issues.forEach { reader.record($0) }
            return reader.readLibrary(&root, checksum: checksum)
        }
    }
}

// MARK: - Checksum

/// The library checksum: SHA-256 of the file's bytes with the `sha256 = "…"` line removed.
public enum LibraryChecksum {
    /// The lowercase hex SHA-256 of `text` without its `sha256` line (the line and its newline removed).
    public static func compute(text: String) -> String {
        let content = lines(of: text).filter { !isChecksumLine($0) }.joined()
        return sha256Hex(Array(content.utf8))
    }

    /// The lowercase hex SHA-256 (FIPS 180-4) of `bytes`, through OpenSSL's EVP digest API. Any thread.
    ///
    /// OpenSSL's one-shot digest fails only when it cannot allocate its context; the checksum then
    /// comes out as the empty string, which never matches a library's `sha256`, so the library is
    /// refused (fail-safe) with the usual checksum-mismatch message.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
        }
        guard ok == 1, length == 32 else { return "" }
        return digest.prefix(Int(length)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
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
