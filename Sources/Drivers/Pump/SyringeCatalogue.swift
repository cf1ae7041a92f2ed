import InfusionCore

/// Why a syringe name was not found; lists the names that are known.
public struct UnknownSyringeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The name as given.
    public var name: String
    /// Every name the catalogue knows.
    public var known: [String]

    /// Human-readable text for logs and error messages.
    public var description: String {
        "no syringe called \"\(name)\" in the catalogue; known syringes: \(known.joined(separator: ", ")). "
            + "Otherwise measure the barrel's inside diameter and give it with --diameter (mm)"
    }
}

/// Common 10, 20, 30 and 50/60 mL syringes and their inside diameters, for `configureSyringe`.
///
/// Sources: the diameters are those of the syringe table New Era Pump Systems publishes with its pumps
/// (NE-1000 user manual, "Syringe Diameters and Rate Limits"; the same table is on syringepump.com).
/// **They could not be re-read through this project's reference search when the catalogue was written:
/// they are transcribed from that table as recalled, and every entry says so.** Manufacturers change
/// moulds and the same brand differs between markets (BD's US Luer-Lok and EU Plastipak lines), so
/// before clinical use check each entry against the manufacturer's data sheet or measure the barrel,
/// and record the check. The pump computes volume from the diameter: a 2 % error in diameter is a 4 %
/// error in dose.
///
/// A value type with static data; any thread.
public enum SyringeCatalogue {
    private static let newEraTable =
        "New Era Pump Systems syringe diameter table (NE-1000 user manual, syringepump.com) "
        + "[unverified: transcribed, not re-read; check the manufacturer's data sheet]"

    /// Every syringe the catalogue knows, smallest first within each brand.
    public static let all: [SyringeSpec] = [
        SyringeSpec(name: "BD Plastipak 10 mL", nominalVolume: .init(10, .millilitres), insideDiameterMillimetres: 14.43, source: newEraTable + " (row B-D 10 cc)"),
        SyringeSpec(name: "BD Plastipak 20 mL", nominalVolume: .init(20, .millilitres), insideDiameterMillimetres: 19.05, source: newEraTable + " (row B-D 20 cc)"),
        SyringeSpec(name: "BD Plastipak 30 mL", nominalVolume: .init(30, .millilitres), insideDiameterMillimetres: 21.59, source: newEraTable + " (row B-D 30 cc)"),
        SyringeSpec(name: "BD Plastipak 60 mL", nominalVolume: .init(60, .millilitres), insideDiameterMillimetres: 26.59, source: newEraTable + " (row B-D 60 cc; also the manual's example reply 00S26.59)"),
        SyringeSpec(name: "Terumo 10 mL", nominalVolume: .init(10, .millilitres), insideDiameterMillimetres: 15.80, source: newEraTable + " (row Terumo 10 cc)"),
        SyringeSpec(name: "Terumo 20 mL", nominalVolume: .init(20, .millilitres), insideDiameterMillimetres: 20.15, source: newEraTable + " (row Terumo 20 cc)"),
        SyringeSpec(name: "Terumo 30 mL", nominalVolume: .init(30, .millilitres), insideDiameterMillimetres: 23.10, source: newEraTable + " (row Terumo 30 cc)"),
        SyringeSpec(name: "Terumo 60 mL", nominalVolume: .init(60, .millilitres), insideDiameterMillimetres: 29.70, source: newEraTable + " (row Terumo 60 cc)"),
        SyringeSpec(name: "Monoject 12 mL", nominalVolume: .init(12, .millilitres), insideDiameterMillimetres: 15.90, source: newEraTable + " (row Sherwood-Monoject 12 cc)"),
        SyringeSpec(name: "Monoject 20 mL", nominalVolume: .init(20, .millilitres), insideDiameterMillimetres: 20.40, source: newEraTable + " (row Sherwood-Monoject 20 cc)"),
        SyringeSpec(name: "Monoject 35 mL", nominalVolume: .init(35, .millilitres), insideDiameterMillimetres: 23.00, source: newEraTable + " (row Sherwood-Monoject 35 cc)"),
        SyringeSpec(name: "Monoject 60 mL", nominalVolume: .init(60, .millilitres), insideDiameterMillimetres: 26.60, source: newEraTable + " (row Sherwood-Monoject 60 cc)"),
        SyringeSpec(name: "B. Braun Omnifix 10 mL", nominalVolume: .init(10, .millilitres), insideDiameterMillimetres: 15.90, source: newEraTable + " (row B-Braun 10 cc)"),
        SyringeSpec(name: "B. Braun Omnifix 20 mL", nominalVolume: .init(20, .millilitres), insideDiameterMillimetres: 19.90, source: newEraTable + " (row B-Braun 20 cc)"),
        SyringeSpec(name: "B. Braun Omnifix 30 mL", nominalVolume: .init(30, .millilitres), insideDiameterMillimetres: 22.50, source: newEraTable + " (row B-Braun 30 cc)"),
        SyringeSpec(name: "B. Braun Omnifix 50 mL", nominalVolume: .init(50, .millilitres), insideDiameterMillimetres: 26.40, source: newEraTable + " (row B-Braun 50 cc)"),
    ]

    /// The names, in catalogue order.
    public static var names: [String] { all.map(\.name) }

    /// The syringe called `name`, compared case-insensitively with spaces, dots and dashes ignored and
    /// "ml"/"cc" treated alike ("bd plastipak 60ml", "Terumo-20mL" both work). Throws an error that
    /// lists every known name.
    public static func syringe(named name: String) throws(UnknownSyringeError) -> SyringeSpec {
        let key = normalise(name)
        if let match = all.first(where: { normalise($0.name) == key }) { return match }
        throw UnknownSyringeError(name: name, known: names)
    }

    static func normalise(_ text: String) -> String {
        var folded = text.lowercased().filter { !" .-_".contains($0) }
        if folded.hasSuffix("cc") { folded = String(folded.dropLast(2)) + "ml" }
        return folded
    }
}
