import DeviceProtocols
import Drivers
import Foundation
import InfusionCore
import Testing

/// The syringe catalogue: what the table holds, how names are looked up, and the error for a name it
/// does not know. (The diameters themselves are transcribed and marked unverified; these tests catch
/// transcription slips such as a misplaced decimal point, not a wrong row of the source table.)
@Suite("Syringe catalogue")
struct SyringeCatalogueTests {
    /// The brand part of a catalogue name ("BD Plastipak 60 mL" → "BD Plastipak").
    static func brand(_ spec: SyringeSpec) -> String {
        spec.name.split(separator: " ").dropLast(2).joined(separator: " ")
    }

    @Test("the table covers 10, 20, 30, 50 and 60 mL syringes; every nominal volume is written in the name")
    func coverage() {
        let volumes = Set(SyringeCatalogue.all.map { $0.nominalVolume.value(in: .millilitres) })
        #expect(volumes.isSuperset(of: [10, 20, 30, 50, 60]), "\(volumes.sorted())")
        for spec in SyringeCatalogue.all {
            let millilitres = spec.nominalVolume.value(in: .millilitres)
            #expect(spec.name.hasSuffix(" \(Int(millilitres)) mL"), "\(spec.name) says \(millilitres) mL")
            #expect(millilitres == millilitres.rounded() && (1...100).contains(millilitres), "\(spec.name)")
        }
        #expect(SyringeCatalogue.names == SyringeCatalogue.all.map(\.name))
    }

    @Test("every diameter is plausible: one a New Era pump accepts, 10–35 mm, and giving a barrel 45–130 mm long for its volume")
    func diameters() {
        for spec in SyringeCatalogue.all {
            let d = spec.insideDiameterMillimetres
            #expect(d.isFinite)
            #expect(d >= NewEra.RateLimits.minimumDiameterMillimetres && d <= NewEra.RateLimits.maximumDiameterMillimetres, "\(spec.name)")
            #expect((10...35).contains(d), "\(spec.name): \(d) mm is not a 10–60 mL syringe barrel")
            // Volume = π r² × stroke: the stroke of a 10–60 mL syringe is some 5–11 cm. A decimal-point slip
            // (2.659 or 265.9 mm) or a diameter from the wrong row (a 10 mL barrel for a 60 mL syringe) falls outside.
            let area = Double.pi * d * d / 4
            let stroke = spec.nominalVolume.value(in: .millilitres) * 1000 / area
            #expect((45...130).contains(stroke), "\(spec.name): \(d) mm gives a \(stroke) mm stroke")
            // The pump takes 4 significant digits: the table must not hold more than it can set.
            #expect(NewEra.Number.roundingDown(d)?.value == d, "\(spec.name): \(d) mm is not a 4-digit pump number")
        }
    }

    @Test("within a brand, a bigger syringe has a wider barrel")
    func monotonicWithinBrand() {
        let brands = Dictionary(grouping: SyringeCatalogue.all, by: Self.brand)
        #expect(brands.count >= 3, "several brands: \(brands.keys.sorted())")
        for (brand, specs) in brands {
            let sorted = specs.sorted { $0.nominalVolume < $1.nominalVolume }
            for (smaller, bigger) in zip(sorted, sorted.dropFirst()) {
                #expect(smaller.nominalVolume < bigger.nominalVolume, "\(brand): two entries of one size")
                #expect(smaller.insideDiameterMillimetres < bigger.insideDiameterMillimetres,
                        "\(brand): \(smaller.name) \(smaller.insideDiameterMillimetres) mm, \(bigger.name) \(bigger.insideDiameterMillimetres) mm")
            }
        }
    }

    @Test("names are unique, also as the lookup compares them; every entry names its source and says it is unverified")
    func namesAndSources() throws {
        let names = SyringeCatalogue.names
        #expect(Set(names).count == names.count)
        // Two names the lookup cannot tell apart would make one entry unreachable.
        for spec in SyringeCatalogue.all {
            #expect(try SyringeCatalogue.syringe(named: spec.name) == spec)
            #expect(try SyringeCatalogue.syringe(named: spec.name.uppercased()) == spec)
        }
        for spec in SyringeCatalogue.all {
            #expect(spec.source.contains("New Era"), "\(spec.name): \(spec.source)")
            #expect(spec.source.contains("unverified"), "\(spec.name): \(spec.source)")
        }
        // The one diameter the reference pins independently: the manual's example reply 00S26.59.
        #expect(try SyringeCatalogue.syringe(named: "BD Plastipak 60 mL").insideDiameterMillimetres == 26.59)
    }

    @Test("lookup ignores case, spaces, dots, dashes and underscores, and takes cc for mL",
          arguments: ["BD Plastipak 60 mL", "bd plastipak 60ml", "BDPLASTIPAK60ML", "bd-plastipak-60-ml", "bd_plastipak_60_ml",
                      "  BD  Plastipak 60 mL  ", "B.D. Plastipak 60 cc", "bd plastipak 60CC"])
    func tolerantLookup(name: String) throws {
        #expect(try SyringeCatalogue.syringe(named: name).name == "BD Plastipak 60 mL")
    }

    @Test("other spellings find their entries", arguments: [
        ("terumo-20mL", "Terumo 20 mL"), ("b braun omnifix 50 cc", "B. Braun Omnifix 50 mL"), ("MONOJECT 12ML", "Monoject 12 mL"),
    ])
    func otherEntries(name: String, expected: String) throws {
        #expect(try SyringeCatalogue.syringe(named: name).name == expected)
    }

    @Test("a name it does not know (or a size a brand does not come in) gives an error listing every known syringe and --diameter",
          arguments: ["Acme 60 mL", "BD Plastipak 50 mL", "Terumo 45 mL", "60 mL", "", "BD Plastipak 60 mL extra"])
    func unknown(name: String) {
        do throws(UnknownSyringeError) {
            let found = try SyringeCatalogue.syringe(named: name)
            Issue.record("\"\(name)\" found \(found.name)")
        } catch {
            #expect(error.name == name)
            #expect(error.known == SyringeCatalogue.names)
            let text = error.description
            #expect(text.contains("no syringe called \"\(name)\""), "\(text)")
            for known in SyringeCatalogue.names { #expect(text.contains(known), "\(known) missing from: \(text)") }
            #expect(text.contains("--diameter"), "\(text)")
        }
    }
}
