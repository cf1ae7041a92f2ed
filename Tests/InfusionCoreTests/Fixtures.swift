import Foundation
import Testing
@testable import InfusionCore

/// The shipped default library and helpers to make broken variants of it.
enum Fixtures {
    static let defaultLibraryURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")

    static let defaultLibraryText: String = (try? String(contentsOf: defaultLibraryURL, encoding: .utf8)) ?? ""

    static func defaultLibrary() throws -> DrugLibrary {
        try DrugLibrary.load(text: defaultLibraryText, source: "default-library.toml")
    }

    /// The default library with `old` replaced by `new` (which must occur), then re-sealed.
    static func variant(replacing old: String, with new: String, seal: Bool = true) -> String {
        #expect(defaultLibraryText.contains(old), "fixture text not found: \(old)")
        let text = defaultLibraryText.replacingOccurrences(of: old, with: new)
        return seal ? LibraryChecksum.seal(text: text) : text
    }

    /// The default library with every `(old, new)` replacement applied in order (each `old` must occur),
    /// then re-sealed.
    static func variant(replacing replacements: [(String, String)]) -> String {
        var text = defaultLibraryText
        for (old, new) in replacements {
            #expect(text.contains(old), "fixture text not found: \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        return LibraryChecksum.seal(text: text)
    }

    /// Loads `text` expecting failure; returns the issues.
    static func issues(_ text: String) -> [DrugLibraryIssue] {
        do {
            _ = try DrugLibrary.load(text: text, source: "test.toml")
            Issue.record("the library should have been refused")
            return []
        } catch {
            return error.issues
        }
    }

    /// The 1-based line of the first occurrence of `needle` in `text`.
    static func line(of needle: String, in text: String) -> Int? {
        text.components(separatedBy: "\n").firstIndex { $0.contains(needle) }.map { $0 + 1 }
    }
}
