import InfusionCore

/// How the undocumented variables are read **[unverified]**, shared by the driver and the simulator so
/// both stay consistent: `a` as a hex bit set, `m` as the `MO` digit.
public enum FreseniusVariableReading {
    /// `a` bit 0: occlusion (pressure) alarm.
    public static let occlusionBit: UInt32 = 1 << 0
    /// `a` bit 1: syringe empty / end of travel.
    public static let emptyBit: UInt32 = 1 << 1
    /// `a` bit 2: near end of syringe (advisory).
    public static let nearEmptyBit: UInt32 = 1 << 2

    /// The pump alarms in an `a` value; unknown bits are reported as `.deviceFault`.
    public static func alarms(fromAlarmBits bits: UInt32) -> PumpAlarms {
        var set: PumpAlarms = []
        if bits & occlusionBit != 0 { set.insert(.occlusion) }
        if bits & emptyBit != 0 { set.insert(.empty) }
        if bits & nearEmptyBit != 0 { set.insert(.nearEmpty) }
        if bits & ~(occlusionBit | emptyBit | nearEmptyBit) != 0 { set.insert(.deviceFault) }
        return set
    }
}
