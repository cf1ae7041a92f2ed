/// Alarm priority (IEC 60601-1-8): high, medium, low. Comparable: `.high > .medium > .low`.
public enum AlarmPriority: Int, Comparable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Advisory: cyan/yellow, constant; one or two pulses.
    case low = 1
    /// Yellow, flashing 0.4–0.8 Hz; three-pulse burst.
    case medium = 2
    /// Red, flashing 1.4–2.8 Hz; ten-pulse burst.
    case high = 3

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self { case .low: "low"; case .medium: "medium"; case .high: "high" }
    }
}

/// Whether an alarm is about the patient or about the equipment (IEC 60601-1-8).
public enum AlarmCategory: String, Hashable, Sendable {
    /// About the patient's condition (low SpO2, high pulse rate).
    case physiological
    /// About the equipment (occlusion, probe off, lost communication).
    case technical
}
