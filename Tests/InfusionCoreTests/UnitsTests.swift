import Foundation
import Testing
@testable import InfusionCore

@Suite("Units: parsing")
struct UnitParsingTests {
    @Test("quantities parse with and without a space, in every spelling")
    func parsesSpellings() throws {
        #expect(try BodyWeight.parse("80 kg") == .kilograms(80))
        #expect(try BodyWeight.parse("80kg") == .kilograms(80))
        #expect(try WeightBasedDoseRate.parse("0.5mg/kg/h") == .milligramsPerKilogramPerHour(0.5))
        #expect(try WeightBasedDoseRate.parse("0.5 mg/kg/hr") == .milligramsPerKilogramPerHour(0.5))
        #expect(try WeightBasedDoseRate.parse("5 mcg/kg/min") == .milligramsPerKilogramPerHour(0.3))
        #expect(try WeightBasedDoseRate.parse("5 µg/kg/min") == .milligramsPerKilogramPerHour(0.3))
        #expect(try WeightBasedDoseRate.parse("5 μg/kg/min") == .milligramsPerKilogramPerHour(0.3)) // Greek mu
        #expect(try WeightBasedDoseRate.parse("5 ug/kg/min") == .milligramsPerKilogramPerHour(0.3))
        #expect(try VolumeRate.parse("1.5 mL/min") == .millilitresPerHour(90))
        #expect(try VolumeRate.parse("250 uL/h") == .millilitresPerHour(0.25))
        #expect(try VolumeRate.parse("10 µL/min") == .millilitresPerHour(0.6))
        #expect(try VolumeRate.parse("28 ML/H") == .millilitresPerHour(28))
        #expect(try Concentration.parse("1 mg/mL") == .milligramsPerMillilitre(1))
        #expect(try Concentration.parse("500 mcg/mL") == .milligramsPerMillilitre(0.5))
        #expect(try Mass.parse("80 mg") == .milligrams(80))
        #expect(try Mass.parse("250 µg") == .milligrams(0.25))
        #expect(try Mass.parse("1 g") == .milligrams(1000))
        #expect(try Volume.parse("2 L") == .millilitres(2000))
        #expect(try Volume.parse("500 µL") == .millilitres(0.5))
        #expect(try DoseRate.parse("22 mg/h") == .milligramsPerHour(22))
        #expect(try DoseRate.parse("0.5 mg/min") == .milligramsPerHour(30))
        #expect(try WeightBasedDose.parse("0.35 mg/kg") == .milligramsPerKilogram(0.35))
        #expect(try WeightBasedDose.parse("350 mcg/kg") == .milligramsPerKilogram(0.35))
        #expect(try Percentage.parse("90 %") == .percent(90))
        #expect(try PulseRate.parse("130 bpm") == .beatsPerMinute(130))
    }

    @Test("durations parse in s, min and h")
    func parsesDurations() throws {
        #expect(try Duration.parse("40min") == .seconds(2400))
        #expect(try Duration.parse("40 min") == .seconds(2400))
        #expect(try Duration.parse("4 h") == .seconds(14_400))
        #expect(try Duration.parse("1.5 hours") == .seconds(5400))
        #expect(try Duration.parse("90 s") == .seconds(90))
        #expect(try Duration.parse("0.5 s") == .milliseconds(500))
    }

    @Test("a missing unit is an error naming the accepted units")
    func missingUnit() {
        #expect(throws: QuantityParseError.missingUnit(text: "80", dimension: "body weight", accepted: "kg")) {
            try BodyWeight.parse("80")
        }
        do {
            _ = try VolumeRate.parse("28")
            Issue.record("a bare number must not parse")
        } catch {
            #expect(error.description.contains("mL/h, mL/min, µL/h, µL/min"))
        }
        do {
            _ = try Duration.parse("40")
            Issue.record("a bare number must not parse")
        } catch {
            #expect(error.description.contains("s, min, h"))
        }
    }

    @Test("an unknown unit is an error naming the accepted units")
    func unknownUnit() {
        do {
            _ = try WeightBasedDoseRate.parse("0.5 mg/kg/day")
            Issue.record("mg/kg/day must not parse")
        } catch {
            guard case let .unknownUnit(_, unit, _, accepted) = error else { Issue.record("wrong error \(error)"); return }
            #expect(unit == "mg/kg/day")
            #expect(accepted == "mg/kg/h, µg/kg/min, µg/kg/h, mg/kg/min")
        }
        // Pounds are not accepted for weight: a classic twofold error.
        #expect(throws: QuantityParseError.self) { try BodyWeight.parse("176 lb") }
        // A dimension mismatch is an unknown unit for that dimension.
        #expect(throws: QuantityParseError.self) { try VolumeRate.parse("28 mg/h") }
    }

    @Test("bad numbers are refused", arguments: ["", "   ", "-5 kg", "1.2.3 kg", "kg", ".kg", "1e3 kg", "nan kg", "inf kg", "1,5 kg", "12345678901234567 kg"])
    func badNumbers(text: String) {
        #expect(throws: QuantityParseError.self) { try BodyWeight.parse(text) }
    }

    @Test("a dose entry keeps the unit it was written in")
    func doseEntries() throws {
        #expect(try DoseEntry.parse("0.35 mg/kg/h") == .weightBased(.milligramsPerKilogramPerHour(0.35), .milligramsPerKilogramPerHour))
        #expect(try DoseEntry.parse("22 mg/h") == .absolute(.milligramsPerHour(22), .milligramsPerHour))
        #expect(try DoseEntry.parse("28 mL/h") == .volumeRate(.millilitresPerHour(28), .millilitresPerHour))
        do {
            _ = try DoseEntry.parse("0.35")
            Issue.record("a bare dose must not parse")
        } catch {
            #expect(error.description.contains("mg/kg/h") && error.description.contains("mL/h"))
        }
    }
}

@Suite("Units: conversions")
struct UnitConversionTests {
    @Test("unit conversions are exact in decimal")
    func exactUnitConversions() {
        #expect(WeightBasedDoseRate(5, .microgramsPerKilogramPerMinute).canonicalValue == 0.3)
        #expect(WeightBasedDoseRate.milligramsPerKilogramPerHour(0.3).value(in: .microgramsPerKilogramPerMinute) == 5)
        #expect(VolumeRate(7, .microlitresPerMinute).canonicalValue == 0.42)
        #expect(VolumeRate.millilitresPerHour(0.42).value(in: .microlitresPerMinute) == 7)
        #expect(VolumeRate.millilitresPerHour(28).value(in: .millilitresPerMinute) == 28.0 / 60.0 || abs(VolumeRate.millilitresPerHour(28).value(in: .millilitresPerMinute) - 28.0 / 60.0) < 1e-15)
    }

    @Test("dose rate + weight + concentration gives the pump rate, and back")
    func pumpRate() throws {
        let rate = try #require(Dosing.pumpRate(doseRate: .milligramsPerKilogramPerHour(0.35), weight: .kilograms(80), concentration: .milligramsPerMillilitre(1)))
        #expect(rate == .millilitresPerHour(28))
        let rate2 = try #require(Dosing.pumpRate(doseRate: .milligramsPerKilogramPerHour(0.35), weight: .kilograms(80), concentration: .milligramsPerMillilitre(2)))
        #expect(rate2 == .millilitresPerHour(14))
        // 0.29 × 100 is 28.999999999999996 in binary floating point; exactly 29 here.
        let rate3 = try #require(Dosing.pumpRate(doseRate: .milligramsPerKilogramPerHour(0.29), weight: .kilograms(100), concentration: .milligramsPerMillilitre(1)))
        #expect(rate3 == .millilitresPerHour(29))
        let back = try #require(Dosing.doseRate(pumpRate: .millilitresPerHour(28), weight: .kilograms(80), concentration: .milligramsPerMillilitre(1)))
        #expect(back == .milligramsPerKilogramPerHour(0.35))
        #expect(Dosing.pumpRate(doseRate: .milligramsPerHour(10), concentration: .zero) == nil)
        #expect(Dosing.doseRate(pumpRate: .millilitresPerHour(10), weight: .zero, concentration: .milligramsPerMillilitre(1)) == nil)
    }

    @Test("delivered volume gives delivered dose")
    func deliveredDose() throws {
        #expect(Dosing.deliveredDose(volume: .millilitres(18.5), concentration: .milligramsPerMillilitre(2)) == .milligrams(37))
        let perKg = try #require(Dosing.deliveredDose(volume: .millilitres(28), concentration: .milligramsPerMillilitre(1), weight: .kilograms(80)))
        #expect(perKg == .milligramsPerKilogram(0.35))
        #expect(Dosing.volume(rate: .millilitresPerHour(28), over: .seconds(2400)).millilitres == 18.666666666666668 || abs(Dosing.volume(rate: .millilitresPerHour(28), over: .seconds(2400)).millilitres - 56.0 / 3.0) < 1e-12)
        #expect(Dosing.volume(rate: .millilitresPerHour(30), over: .seconds(1800)) == .millilitres(15))
        #expect(Dosing.dose(rate: .milligramsPerKilogramPerHour(0.35), over: .seconds(14_400)) == .milligramsPerKilogram(1.4))
        #expect(Dosing.rate(toDeliver: .millilitres(24), over: .seconds(600)) == .millilitresPerHour(144))
        #expect(Dosing.rate(toDeliver: .millilitres(24), over: .zero) == nil)
    }
}

@Suite("Units: rounding to a device")
struct RoundingTests {
    @Test("rounding to a resolution goes down and reports the actual value")
    func roundsDown() {
        let r = VolumeRate.millilitresPerHour(28.456).roundedDown(toMultipleOf: .millilitresPerHour(0.01))
        #expect(r.actual == .millilitresPerHour(28.45))
        #expect(r.requested == .millilitresPerHour(28.456))
        #expect(r.wasRounded)
        #expect(abs(r.reduction.millilitresPerHour - 0.006) < 1e-12)
        // Already on the grid: unchanged, even when binary floating point would put it a hair below.
        let exact = VolumeRate.millilitresPerHour(0.29 * 100).roundedDown(toMultipleOf: .millilitresPerHour(0.01))
        #expect(exact.actual <= exact.requested)
        let onGrid = VolumeRate.millilitresPerHour(29).roundedDown(toMultipleOf: .millilitresPerHour(0.01))
        #expect(onGrid.actual == .millilitresPerHour(29))
        #expect(!onGrid.wasRounded)
    }

    @Test("significant-digit rounding (New Era: 4 digits, 3 decimals) goes down")
    func significantDigits() {
        #expect(VolumeRate.millilitresPerHour(28.45678).roundedDown(significantDigits: 4, maxFractionDigits: 3, in: .millilitresPerHour).actual == .millilitresPerHour(28.45))
        #expect(VolumeRate.millilitresPerHour(0.123456).roundedDown(significantDigits: 4, maxFractionDigits: 3, in: .millilitresPerHour).actual == .millilitresPerHour(0.123))
        #expect(VolumeRate.millilitresPerHour(1234.9).roundedDown(significantDigits: 4, maxFractionDigits: 3, in: .millilitresPerHour).actual == .millilitresPerHour(1234))
        #expect(VolumeRate.millilitresPerHour(12345).roundedDown(significantDigits: 4, maxFractionDigits: 3, in: .millilitresPerHour).actual == .millilitresPerHour(12340))
        #expect(VolumeRate.millilitresPerHour(0.0004).roundedDown(significantDigits: 4, maxFractionDigits: 3, in: .millilitresPerHour).actual == .zero)
        // In µL/min: 28 mL/h = 466.666… µL/min → 466.6 µL/min.
        let r = VolumeRate.millilitresPerHour(28).roundedDown(significantDigits: 4, maxFractionDigits: 3, in: .microlitresPerMinute)
        #expect(r.actual.value(in: .microlitresPerMinute) == 466.6)
        #expect(r.actual < r.requested)
    }

    @Test("formatting trims zeros and rounds half away from zero")
    func formatting() {
        #expect(VolumeRate.millilitresPerHour(28).description == "28 mL/h")
        #expect(WeightBasedDoseRate.milligramsPerKilogramPerHour(0.35).description == "0.35 mg/kg/h")
        #expect(Volume.millilitres(56.0 / 3.0).description == "18.667 mL")
        #expect(NumberText.format(2.5, fractionDigits: 0) == "3")
        #expect(Duration.seconds(2400).humanReadable == "40 min")
        #expect(Duration.seconds(14_400).humanReadable == "4 h")
        #expect(Duration.seconds(5400).humanReadable == "1 h 30 min")
        #expect(Duration.seconds(15).humanReadable == "15 s")
    }
}

@Suite("Clock seam")
struct ClockTests {
    @Test("the virtual clock moves only when told, never backwards")
    func virtualClock() {
        let clock = VirtualClock()
        #expect(clock.now() == .origin)
        clock.advance(by: .seconds(2))
        #expect(clock.now().nanoseconds == 2_000_000_000)
        clock.advance(by: .seconds(-1))
        #expect(clock.now().nanoseconds == 2_000_000_000)
        clock.advance(to: MonotonicInstant(nanoseconds: 1))
        #expect(clock.now().nanoseconds == 2_000_000_000)
        clock.advance(to: MonotonicInstant(nanoseconds: 5_000_000_000))
        #expect(clock.now() - MonotonicInstant.origin == .seconds(5))
    }

    @Test("the system monotonic clock does not go backwards")
    func systemClock() {
        let clock = SystemMonotonicClock()
        var previous = clock.now()
        for _ in 0..<1000 {
            let now = clock.now()
            #expect(now >= previous)
            previous = now
        }
    }

    @Test("a scaled clock runs faster by its speed and scales real waits down")
    func scaledClock() throws {
        let clock = ScaledClock(speed: 100)
        #expect(clock.realDuration(of: .seconds(1)) == .milliseconds(10))
        #expect(SystemMonotonicClock().realDuration(of: .seconds(1)) == .seconds(1))
        let first = clock.now()
        let realStart = SystemMonotonicClock().now()
        var realNow = realStart
        while realNow - realStart < .milliseconds(20) { realNow = SystemMonotonicClock().now() }
        let elapsed = clock.now() - first
        // At least 20 ms × 100 of clock time have passed (a busy machine can only add to it).
        #expect(elapsed >= .seconds(2))
        #expect(ScaledClock(speed: -3).speed == 1)
    }

    @Test("instant arithmetic saturates instead of trapping")
    func saturation() {
        let late = MonotonicInstant(nanoseconds: .max - 1)
        #expect((late + .seconds(10)).nanoseconds == .max)
        let early = MonotonicInstant(nanoseconds: .min + 1)
        #expect((early - .seconds(10)).nanoseconds == .min)
    }
}
