import Foundation
import InfusionCore

extension NewEra {
    /// The rate range a New Era pump accepts for a syringe of a given inside diameter: the pump drives
    /// the plunger between a slowest and a fastest linear speed, so the volume rate limits scale with
    /// the syringe's cross-section. A rate outside them is answered `?OOR`.
    ///
    /// The speeds are derived from the NE-1000 specification as published by New Era ("maximum
    /// 1699 mL/h with a 60 mL B-D syringe (26.59 mm), minimum 0.73 µL/h with a 1 mL B-D syringe
    /// (4.699 mm)") **[unverified: from New Era's NE-1000 product specification, not re-read here]**.
    /// Other models (NE-300, NE-500, NE-4000) have other motors; the driver therefore treats these
    /// limits as advisory (the pump's own `?OOR` is authoritative) and the simulator uses them as its
    /// model. Pure; any thread.
    public struct RateLimits: Hashable, Sendable {
        /// Fastest plunger speed, mm/h (1699 mL/h over the cross-section of a 26.59 mm syringe).
        public static let maximumPlungerSpeedMillimetresPerHour = 1_699_000.0 / crossSection(26.59)
        /// Slowest plunger speed, mm/h (0.73 µL/h over the cross-section of a 4.699 mm syringe).
        public static let minimumPlungerSpeedMillimetresPerHour = 0.73 / crossSection(4.699)
        /// Largest diameter the pump accepts, mm (nesp-lib's and the manual's 80 mm).
        public static let maximumDiameterMillimetres = 80.0
        /// Smallest diameter the pump accepts, mm (nesp-lib's 0.1 mm).
        public static let minimumDiameterMillimetres = 0.1

        /// The syringe's inside diameter, mm.
        public let diameterMillimetres: Double

        /// Limits for a syringe of `diameterMillimetres` inside diameter.
        public init(diameterMillimetres: Double) { self.diameterMillimetres = diameterMillimetres }

        /// Volume per millimetre of plunger travel, in µL/mm (= the cross-section in mm²).
        public var microlitresPerMillimetre: Double { Self.crossSection(diameterMillimetres) }

        /// The highest rate the pump accepts with this syringe.
        public var maximumRate: VolumeRate {
            VolumeRate(microlitresPerMillimetre * Self.maximumPlungerSpeedMillimetresPerHour, .microlitresPerHour)
        }

        /// The lowest non-zero rate the pump accepts with this syringe.
        public var minimumRate: VolumeRate {
            VolumeRate(microlitresPerMillimetre * Self.minimumPlungerSpeedMillimetresPerHour, .microlitresPerHour)
        }

        /// True when the pump accepts `rate` with this syringe (a rate of 0 is not accepted).
        public func accepts(_ rate: VolumeRate) -> Bool {
            rate.canonicalValue > 0 && rate <= maximumRate && rate >= minimumRate
        }

        /// Cross-section of a bore of `diameter` mm, in mm² (= µL per mm of travel).
        public static func crossSection(_ diameter: Double) -> Double {
            Double.pi * diameter * diameter / 4
        }
    }
}
