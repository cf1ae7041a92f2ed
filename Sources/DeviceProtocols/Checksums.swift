/// The checksums the supported device protocols use (reference/protocols.md §D). Pure; any thread;
/// no allocation.
public enum Checksums {
    /// CRC-16/XMODEM: poly 0x1021, init 0x0000, no reflection, no final xor.
    /// Used by New Era safe mode and Baxter AS50. Check: "SAF0" → 0x5543.
    public static func crc16XMODEM<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        crc16CCITT(bytes, initial: 0x0000)
    }

    /// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
    /// Used by the Alaris Asena family. Check: "INF" → 0x4961.
    public static func crc16CCITTFalse<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        crc16CCITT(bytes, initial: 0xFFFF)
    }

    /// Low byte of the sum of `bytes` (Nonin DF2/DF7 frame checksum, MT-style sums).
    public static func sum8<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
        var sum: UInt8 = 0
        for byte in bytes { sum &+= byte }
        return sum
    }

    private static func crc16CCITT<C: Collection>(_ bytes: C, initial: UInt16) -> UInt16 where C.Element == UInt8 {
        var crc = initial
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}
