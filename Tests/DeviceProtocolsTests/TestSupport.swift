import InfusionCore
import PropertyBased

/// Hex text → bytes ("02 08 53" → [0x02, 0x08, 0x53]); for writing golden vectors as in protocols.md.
func hexBytes(_ text: String) -> [UInt8] {
    text.split(separator: " ").compactMap { UInt8($0, radix: 16) }
}

/// Bytes of an ASCII string.
func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// A fixed-seed generator so every robustness run sees the same byte streams.
func seededRNG(_ a: UInt64, _ b: UInt64 = 0x9E37_79B9_7F4A_7C15) -> Xoshiro {
    Xoshiro(seed: (a, b, a ^ 0xDEAD_BEEF_CAFE_F00D, b &+ 0x1234_5678))
}

extension RandomNumberGenerator {
    /// `count` random bytes.
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &self) }
    }
}

/// Splits `bytes` into random chunks of 1…`maxChunk` bytes (simulates a serial read loop).
func randomChunks<R: RandomNumberGenerator>(_ bytes: [UInt8], maxChunk: Int, using rng: inout R) -> [ArraySlice<UInt8>] {
    var chunks: [ArraySlice<UInt8>] = []
    var start = 0
    while start < bytes.count {
        let length = Int.random(in: 1...maxChunk, using: &rng)
        let end = min(bytes.count, start + length)
        chunks.append(bytes[start..<end])
        start = end
    }
    return chunks
}

/// An instant `milliseconds` after the origin.
func ms(_ milliseconds: Int64) -> MonotonicInstant { MonotonicInstant(nanoseconds: milliseconds * 1_000_000) }
