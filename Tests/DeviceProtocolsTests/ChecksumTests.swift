import Testing
@testable import DeviceProtocols

/// Check values from reference/protocols.md §D (each recomputed independently there).
@Suite("Checksums")
struct ChecksumTests {
    @Test("CRC-16/XMODEM check values (New Era safe mode, Baxter AS50)")
    func xmodem() {
        #expect(Checksums.crc16XMODEM(Array("SAF0".utf8)) == 0x5543)
        #expect(Checksums.crc16XMODEM(Array("[RESEND]".utf8)) == 0xDB6B)
        #expect(Checksums.crc16XMODEM(Array("[STATUS?]".utf8)) == 0xC34B)
        #expect(Checksums.crc16XMODEM(Array("123456789".utf8)) == 0x31C3)  // the catalogue check value
    }

    @Test("CRC-16/CCITT-FALSE check values (Alaris Asena)")
    func ccittFalse() {
        #expect(Checksums.crc16CCITTFalse(Array("INF".utf8)) == 0x4961)
        #expect(Checksums.crc16CCITTFalse(Array("8002-51740".utf8)) == 0x3CC1)
        #expect(Checksums.crc16CCITTFalse(Array("123456789".utf8)) == 0x29B1)  // the catalogue check value
    }

    @Test("8-bit sum (Nonin DF2)")
    func sum() {
        #expect(Checksums.sum8([0x01, 0x80, 0x49, 0x00]) == 0xCA)
        #expect(Checksums.sum8([0x01, 0x80, 0x46, 0x4A]) == 0x11)
    }
}
