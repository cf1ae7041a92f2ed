import DeviceProtocols
import Testing

/// `*ADR<n>[B<baud>]` (NE-9000 manual §12.4.5 "Set pump network address and baud rate": `*ADR 3`,
/// `*ADR 5 B 1200`). The safe-mode bytes were computed independently (Python `binascii.crc_hqx(data, 0)`,
/// the CRC-16/XMODEM of protocols.md §A1).
@Suite("New Era *ADR address and baud-rate commands")
struct NewEraAddressBaudTests {
    static let three = NewEra.Address(3) ?? .zero
    static let five = NewEra.Address(5) ?? .zero

    @Test("The manual's examples parse to the typed commands and encode back without spaces")
    func manualExamples() {
        #expect(NewEra.CommandPacket(parsing: "*ADR3") == NewEra.CommandPacket(.system, .setAddress(Self.three)))
        #expect(NewEra.CommandPacket(parsing: "*ADR5B1200") == NewEra.CommandPacket(.system, .setAddressAndBaud(Self.five, .b1200)))
        #expect(NewEra.CommandPacket(.system, .setAddressAndBaud(Self.five, .b1200)).text == "*ADR5B1200")
        #expect(NewEra.Command.setAddressAndBaud(Self.five, .b19200).text == "ADR5B19200")
    }

    @Test("Safe-mode framing of *ADR5B1200 and *ADR3 (golden bytes)")
    func safeFraming() throws {
        #expect(try NewEra.Framing.safePacket(NewEra.CommandPacket(.system, .setAddressAndBaud(Self.five, .b1200)))
            == [0x02, 0x0E, 0x2A, 0x41, 0x44, 0x52, 0x35, 0x42, 0x31, 0x32, 0x30, 0x30, 0x91, 0xC7, 0x03])
        #expect(try NewEra.Framing.safePacket(NewEra.CommandPacket(.system, .setAddress(Self.three)))
            == [0x02, 0x09, 0x2A, 0x41, 0x44, 0x52, 0x33, 0xF9, 0xB2, 0x03])
    }

    @Test("Rates the pump does not have, and malformed arguments, are not read as an address command")
    func refusals() {
        for text in ["ADR5B4800", "ADR5B", "ADR5B19200X", "ADR100", "ADRB9600", "ADR5C9600"] {
            if case .other = NewEra.Command(parsing: text) {} else { Issue.record("\(text) parsed as \(NewEra.Command(parsing: text))") }
        }
        #expect(NewEra.BaudRate.allCases.map(\.rawValue) == [300, 1200, 2400, 9600, 19200])
    }
}
