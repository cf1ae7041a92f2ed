import PropertyBased

/// Deterministic byte-stream helpers for the Alaris, Fresenius and MT-SICS robustness tests.
/// Every stream comes from a fixed seed, so a failure reproduces exactly.
struct ClinicalStreamRNG {
    private var generator: Xoshiro

    init(seed: UInt64) {
        generator = Xoshiro(seed: (seed, seed &* 0x9E37_79B9_7F4A_7C15, ~seed, seed ^ 0xD1B5_4A32_D192_ED03))
    }

    mutating func int(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }

    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &generator) < probability }

    mutating func byte() -> UInt8 { UInt8.random(in: 0...255, using: &generator) }

    /// Random bytes, biased so that the protocol's special bytes turn up often.
    mutating func noise(count: Int, specials: [UInt8]) -> [UInt8] {
        (0..<count).map { _ in
            if !specials.isEmpty, chance(0.2) { return specials[int(in: 0...(specials.count - 1))] }
            return byte()
        }
    }

    mutating func element<T>(of array: [T]) -> T { array[int(in: 0...(array.count - 1))] }

    /// Splits `bytes` into chunks of 1...`maximum` bytes.
    mutating func chunks(_ bytes: [UInt8], maximum: Int) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            let size = min(int(in: 1...maximum), bytes.count - index)
            result.append(Array(bytes[index..<(index + size)]))
            index += size
        }
        return result
    }
}

/// True when `expected` occurs in `actual` in order (other elements may sit between).
func isOrderedSubsequence<T: Equatable>(_ expected: [T], of actual: [T]) -> Bool {
    var iterator = actual.makeIterator()
    outer: for item in expected {
        while let candidate = iterator.next() {
            if candidate == item { continue outer }
        }
        return false
    }
    return true
}

// `ascii(_:)` comes from TestSupport.swift.
