import InfusionCore
import PropertyBased
import Testing
@testable import DeviceProtocols

/// Rate encoding: the unit with the most resolution, always rounded toward less drug.
@Suite("New Era rate encoding")
struct NewEraRateTests {
    @Test("exact rates keep mL/h when it is exact")
    func exactRates() throws {
        let (setting, rounded) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(28))
        #expect(setting.text == "28MH")
        #expect(!rounded.wasRounded)
        let (small, smallRounded) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(1.5))
        #expect(small.text == "1.5MH")
        #expect(smallRounded.actual == .millilitresPerHour(1.5))
    }

    @Test("a rate mL/h cannot hold picks the unit that keeps more digits, rounding down")
    func resolution() throws {
        // 1.23456 mL/h: MH → 1.234; UH → 1234 (same); MM → 0.020 (0.0205…→0.020 = 1.2 mL/h); UM → 20.57 → 1.2342 mL/h.
        let (setting, rounded) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(1.23456))
        #expect(setting.text == "20.57UM")
        #expect(rounded.actual == VolumeRate(20.57, .microlitresPerMinute))
        #expect(rounded.actual <= rounded.requested)
        #expect(rounded.wasRounded)

        // 12345 mL/h does not fit 4 digits in mL/h; 205.75 mL/min → 205.7 MM.
        let (large, largeRounded) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(12345))
        #expect(large.text == "205.7MM")
        #expect(largeRounded.actual == VolumeRate(205.7, .millilitresPerMinute))

        // 0.0001 mL/h = 0.1 µL/h.
        let (tiny, _) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(0.0001))
        #expect(tiny.text == "0.1UH")
    }

    @Test("zero, too small, too large and invalid rates")
    func limits() throws {
        #expect(try NewEra.RateSetting.roundingDown(.zero).setting.text == "0MH")
        #expect(throws: NewEra.EncodingError.rateTooSmall(.millilitresPerHour(0.0000001))) {
            try NewEra.RateSetting.roundingDown(.millilitresPerHour(0.0000001))
        }
        #expect(throws: NewEra.EncodingError.self) {
            try NewEra.RateSetting.roundingDown(VolumeRate(10000, .millilitresPerMinute))
        }
        #expect(throws: NewEra.EncodingError.self) { try NewEra.RateSetting.roundingDown(.millilitresPerHour(-1)) }
        #expect(throws: NewEra.EncodingError.self) { try NewEra.RateSetting.roundingDown(.millilitresPerHour(.nan)) }
    }

    @Test("property: the encoded rate never exceeds the request, is what the setting means, and loses < 0.1 %")
    func neverAbove() async {
        await propertyCheck(count: 2000, input: Gen.double(in: 0.001...500_000)) { millilitresPerHour in
            let requested = VolumeRate.millilitresPerHour(millilitresPerHour)
            guard let (setting, rounded) = try? NewEra.RateSetting.roundingDown(requested) else {
                Issue.record("\(millilitresPerHour) mL/h should be encodable")
                return
            }
            #expect(rounded.requested == requested)
            #expect(rounded.actual <= requested)
            #expect(rounded.actual == setting.volumeRate)
            #expect(setting.number.scaledValue <= 9999 && setting.number.fractionDigits <= 3)
            // Four significant digits in the best unit lose at most 1 part in 1000.
            #expect(rounded.actual.canonicalValue >= requested.canonicalValue * 0.999)
            // And the text parses back to the same setting.
            #expect(NewEra.Command(parsing: NewEra.Command.setRate(setting).text) == .setRate(setting))
        }
    }
}
