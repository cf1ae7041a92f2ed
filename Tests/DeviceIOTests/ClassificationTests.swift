import Testing

@testable import DeviceIO

@Suite("Device classification from udev properties")
struct ClassificationTests {
    /// The adapters of reference/protocols.md §C1, written out independently of the table.
    static let serialBridges: [(String, String)] = [
        ("0403", "6001"), ("0403", "6010"), ("0403", "6011"), ("0403", "6014"), ("0403", "6015"),
        ("067b", "2303"), ("067b", "23a3"),
        ("10c4", "ea60"), ("10c4", "ea70"), ("10c4", "ea71"),
        ("1a86", "7523"), ("1a86", "5523"), ("1a86", "55d4"),
    ]
    static let hidOximeters: [(String, String)] = [("28e9", "028a"), ("11ca", "0224")]

    static func tty(_ extra: [String: String] = [:], vendor: String = "0403", model: String = "6001") -> [String: String] {
        ["SUBSYSTEM": "tty", "ID_BUS": "usb", "ID_VENDOR_ID": vendor, "ID_MODEL_ID": model, "DEVNAME": "/dev/ttyUSB0"]
            .merging(extra) { $1 }
    }

    static func hidraw(_ extra: [String: String] = [:], vendor: String = "28e9", model: String = "028a") -> [String: String] {
        ["SUBSYSTEM": "hidraw", "ID_VENDOR_ID": vendor, "ID_MODEL_ID": model, "DEVNAME": "/dev/hidraw0"].merging(extra) { $1 }
    }

    @Test("every known USB-serial bridge is 'serial adapter, not configured'", arguments: serialBridges.map { "\($0.0):\($0.1)" })
    func knownBridge(usbID: String) {
        let parts = usbID.split(separator: ":").map(String.init)
        let result = DeviceClassifier.classify(Self.tty(vendor: parts[0], model: parts[1]))
        guard case .serialAdapterNotConfigured(let adapter) = result else {
            Issue.record("\(usbID): expected a serial adapter, got \(result)")
            return
        }
        #expect(adapter.usbID == usbID)
        #expect(adapter.kind == .serialBridge)
        #expect(result.summary.hasPrefix("serial adapter, not configured"))
        // The same bridge upper-cased (some tools print it so) is still recognised.
        #expect(DeviceClassifier.classify(Self.tty(vendor: parts[0].uppercased(), model: parts[1].uppercased())) == result)
        // A bridge's id on a hidraw node is not a serial adapter.
        #expect(DeviceClassifier.classify(Self.hidraw(vendor: parts[0], model: parts[1])) == .unrecognized)
    }

    @Test("the CP210x entry mentions the Contec cable")
    func contecCable() {
        guard case .serialAdapterNotConfigured(let adapter) = DeviceClassifier.classify(Self.tty(vendor: "10c4", model: "ea60"))
        else {
            Issue.record("CP210x not recognised")
            return
        }
        #expect(adapter.note?.contains("Contec") == true)
    }

    @Test("the Contec HID oximeters are HID oximeter candidates on hidraw", arguments: hidOximeters.map { "\($0.0):\($0.1)" })
    func hidOximeter(usbID: String) {
        let parts = usbID.split(separator: ":").map(String.init)
        let result = DeviceClassifier.classify(Self.hidraw(vendor: parts[0], model: parts[1]))
        guard case .hidOximeterCandidate(let adapter) = result else {
            Issue.record("\(usbID): expected a HID oximeter candidate, got \(result)")
            return
        }
        #expect(adapter.usbID == usbID)
        #expect(DeviceClassifier.classify(Self.tty(vendor: parts[0], model: parts[1])) == .unrecognized)
    }

    @Test("the adapter table holds exactly the adapters of the reference")
    func tableIsExactly() {
        let expected = Set((Self.serialBridges + Self.hidOximeters).map { "\($0.0):\($0.1)" })
        #expect(Set(KnownAdapter.table.map(\.usbID)) == expected)
        #expect(KnownAdapter.table.count == expected.count)
    }

    @Test("unknown or malformed ids, or none, are not recognised")
    func unrecognised() {
        #expect(DeviceClassifier.classify(Self.tty(vendor: "1d6b", model: "0002")) == .unrecognized)
        #expect(DeviceClassifier.classify(Self.tty(vendor: "403", model: "6001")) == .unrecognized)
        #expect(DeviceClassifier.classify(Self.tty(vendor: "0x0403", model: "6001")) == .unrecognized)
        #expect(DeviceClassifier.classify(["SUBSYSTEM": "tty", "DEVNAME": "/dev/ttyS0"]) == .unrecognized)
        #expect(DeviceClassifier.classify([:]) == .unrecognized)
    }

    // MARK: Our INFUSION_* properties

    struct Case: Sendable, CustomTestStringConvertible {
        let properties: [String: String]
        let hid: Bool
        let expected: DeviceClassification?  // nil: misconfigured
        let reasonMentions: String?
        var testDescription: String { "\(hid ? "hidraw" : "tty") \(properties.sorted { $0.key < $1.key })" }
    }

    static func configured(
        _ role: DeviceRole, _ protocolName: DeviceProtocolName, hid: Bool = false, baud: BaudRate? = nil, address: Int? = nil
    ) -> DeviceClassification {
        .configured(ConfiguredDevice(role: role, protocolName: protocolName, transport: hid ? .hidraw : .serial, baudRate: baud, address: address))
    }

    static let cases: [Case] = [
        // Role and protocol.
        Case(properties: ["INFUSION_ROLE": "syringe-pump", "INFUSION_PROTOCOL": "newera"], hid: false,
             expected: configured(.syringePump, .newEra), reasonMentions: nil),
        Case(properties: ["INFUSION_ROLE": "pump", "INFUSION_PROTOCOL": "alaris"], hid: false,
             expected: configured(.syringePump, .alaris), reasonMentions: nil),
        Case(properties: ["INFUSION_PROTOCOL": "fresenius"], hid: false,
             expected: configured(.syringePump, .fresenius), reasonMentions: nil),
        Case(properties: ["INFUSION_ROLE": "oximeter", "INFUSION_PROTOCOL": "nonin-df2"], hid: false,
             expected: configured(.oximeter, .noninDF2), reasonMentions: nil),
        Case(properties: ["INFUSION_PROTOCOL": "nonin-df7"], hid: false, expected: configured(.oximeter, .noninDF7), reasonMentions: nil),
        Case(properties: ["INFUSION_PROTOCOL": "nonin-df8"], hid: false, expected: configured(.oximeter, .noninDF8), reasonMentions: nil),
        Case(properties: ["INFUSION_ROLE": "oximeter", "INFUSION_PROTOCOL": "masimo"], hid: false,
             expected: configured(.oximeter, .masimo), reasonMentions: nil),
        Case(properties: ["INFUSION_ROLE": "oximeter", "INFUSION_PROTOCOL": "contec"], hid: false,
             expected: configured(.oximeter, .contec), reasonMentions: nil),
        Case(properties: ["INFUSION_ROLE": "oximeter", "INFUSION_PROTOCOL": "contec"], hid: true,
             expected: configured(.oximeter, .contec, hid: true), reasonMentions: nil),
        Case(properties: ["INFUSION_ROLE": "balance", "INFUSION_PROTOCOL": "mt-sics"], hid: false,
             expected: configured(.balance, .mtSics), reasonMentions: nil),
        // Baud and address.
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_BAUD": "9600", "INFUSION_ADDRESS": "7"], hid: false,
             expected: configured(.syringePump, .newEra, baud: .b9600, address: 7), reasonMentions: nil),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_ADDRESS": "99"], hid: false,
             expected: configured(.syringePump, .newEra, address: 99), reasonMentions: nil),
        Case(properties: ["INFUSION_PROTOCOL": "fresenius", "INFUSION_ADDRESS": "0"], hid: false,
             expected: configured(.syringePump, .fresenius, address: 0), reasonMentions: nil),
        Case(properties: ["INFUSION_PROTOCOL": "contec", "INFUSION_BAUD": "19200"], hid: false,
             expected: configured(.oximeter, .contec, baud: .b19200), reasonMentions: nil),
        Case(properties: ["INFUSION_PROTOCOL": "masimo", "INFUSION_BAUD": ""], hid: false,  // empty = unset
             expected: configured(.oximeter, .masimo), reasonMentions: nil),
        // Misconfigurations: unknown values, contradictions, missing protocol, bad numbers.
        Case(properties: ["INFUSION_ROLE": "pumpp", "INFUSION_PROTOCOL": "newera"], hid: false, expected: nil, reasonMentions: "INFUSION_ROLE"),
        Case(properties: ["INFUSION_ROLE": "Oximeter", "INFUSION_PROTOCOL": "masimo"], hid: false, expected: nil, reasonMentions: "INFUSION_ROLE"),
        Case(properties: ["INFUSION_PROTOCOL": "nonin"], hid: false, expected: nil, reasonMentions: "INFUSION_PROTOCOL"),
        Case(properties: ["INFUSION_PROTOCOL": "NEWERA"], hid: false, expected: nil, reasonMentions: "INFUSION_PROTOCOL"),
        Case(properties: ["INFUSION_ROLE": "oximeter"], hid: false, expected: nil, reasonMentions: "INFUSION_PROTOCOL is missing"),
        Case(properties: ["INFUSION_BAUD": "9600"], hid: false, expected: nil, reasonMentions: "INFUSION_PROTOCOL is missing"),
        Case(properties: ["INFUSION_ADDRESS": "1"], hid: false, expected: nil, reasonMentions: "INFUSION_PROTOCOL is missing"),
        Case(properties: ["INFUSION_ROLE": "oximeter", "INFUSION_PROTOCOL": "newera"], hid: false, expected: nil, reasonMentions: "contradicts"),
        Case(properties: ["INFUSION_ROLE": "balance", "INFUSION_PROTOCOL": "contec"], hid: false, expected: nil, reasonMentions: "contradicts"),
        Case(properties: ["INFUSION_ROLE": "syringe-pump", "INFUSION_PROTOCOL": "mt-sics"], hid: false, expected: nil, reasonMentions: "contradicts"),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_BAUD": "14400"], hid: false, expected: nil, reasonMentions: "INFUSION_BAUD"),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_BAUD": "19200 "], hid: false, expected: nil, reasonMentions: "INFUSION_BAUD"),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_BAUD": "fast"], hid: false, expected: nil, reasonMentions: "INFUSION_BAUD"),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_ADDRESS": "100"], hid: false, expected: nil, reasonMentions: "INFUSION_ADDRESS"),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_ADDRESS": "-1"], hid: false, expected: nil, reasonMentions: "INFUSION_ADDRESS"),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_ADDRESS": "0x1"], hid: false, expected: nil, reasonMentions: "INFUSION_ADDRESS"),
        Case(properties: ["INFUSION_PROTOCOL": "fresenius", "INFUSION_ADDRESS": "6"], hid: false, expected: nil, reasonMentions: "INFUSION_ADDRESS"),
        Case(properties: ["INFUSION_PROTOCOL": "masimo", "INFUSION_ADDRESS": "1"], hid: false, expected: nil, reasonMentions: "no address"),
        Case(properties: ["INFUSION_PROTOCOL": "alaris", "INFUSION_ADDRESS": "0"], hid: false, expected: nil, reasonMentions: "no address"),
        Case(properties: ["INFUSION_PROTOCOL": "newera"], hid: true, expected: nil, reasonMentions: "hidraw"),
        Case(properties: ["INFUSION_PROTOCOL": "contec", "INFUSION_BAUD": "115200"], hid: true, expected: nil, reasonMentions: "no baud rate"),
        Case(properties: ["INFUSION_PROTOCOL": "newera", "INFUSION_ROLL": "pump"], hid: false, expected: nil, reasonMentions: "INFUSION_ROLL"),
    ]

    @Test("INFUSION_* combinations", arguments: cases)
    func infusionProperties(c: Case) {
        // Our properties win over the adapter table: the same device is also a known FTDI / Contec HID.
        let properties = c.hid ? Self.hidraw(c.properties) : Self.tty(c.properties)
        let result = DeviceClassifier.classify(properties)
        if let expected = c.expected {
            #expect(result == expected)
        } else {
            guard case .misconfigured(let reason) = result else {
                Issue.record("expected misconfigured, got \(result)")
                return
            }
            if let mention = c.reasonMentions { #expect(reason.contains(mention), "\(reason)") }
            #expect(reason.contains("udev/"))
        }
    }

    /// Every combination of present/valid/invalid values: configured exactly when every given value
    /// is valid and consistent, with the values as given; otherwise misconfigured, never a guess.
    @Test("the whole grid of role × protocol × baud × address values, serial and hidraw")
    func exhaustiveGrid() {
        let roles: [String?] = [nil, "syringe-pump", "pump", "oximeter", "balance", "nurse", "OXIMETER"]
        let protocols: [String?] = [nil, "unknown", "nonin-df13"] + DeviceProtocolName.allCases.map(\.rawValue)
        let bauds: [String?] = [nil, "300", "9600", "115200", "14400", "230400", "9k6"]
        let addresses: [String?] = [nil, "0", "5", "6", "99", "100", "a"]
        var configuredCount = 0
        var checked = 0
        for hid in [false, true] {
            for role in roles {
                for protocolValue in protocols {
                    for baud in bauds {
                        for address in addresses {
                            var ours: [String: String] = [:]
                            ours["INFUSION_ROLE"] = role
                            ours["INFUSION_PROTOCOL"] = protocolValue
                            ours["INFUSION_BAUD"] = baud
                            ours["INFUSION_ADDRESS"] = address
                            guard !ours.isEmpty else { continue }
                            let result = DeviceClassifier.classify(hid ? Self.hidraw(ours) : Self.tty(ours))
                            checked += 1
                            // The oracle, from the specification.
                            let parsedRole = role.map { DeviceRole(udevValue: $0) }
                            let parsedProtocol = protocolValue.flatMap(DeviceProtocolName.init(rawValue:))
                            let parsedBaud = baud.flatMap(Int.init).flatMap(BaudRate.init(rawValue:))
                            let parsedAddress = address.flatMap(Int.init)
                            var valid = parsedProtocol != nil
                            if let parsedProtocol {
                                if let parsedRole { valid = valid && parsedRole == parsedProtocol.role }
                                if hid { valid = valid && parsedProtocol == .contec && baud == nil }
                                if baud != nil { valid = valid && parsedBaud != nil }
                                if address != nil {
                                    valid = valid && parsedAddress.map { parsedProtocol.addressRange?.contains($0) ?? false } == true
                                }
                            }
                            if valid, let parsedProtocol {
                                configuredCount += 1
                                #expect(result == .configured(ConfiguredDevice(
                                    role: parsedProtocol.role, protocolName: parsedProtocol, transport: hid ? .hidraw : .serial,
                                    baudRate: parsedBaud, address: parsedAddress)), "\(ours) hid=\(hid)")
                            } else {
                                guard case .misconfigured = result else {
                                    Issue.record("\(ours) hid=\(hid): expected misconfigured, got \(result)")
                                    continue
                                }
                            }
                        }
                    }
                }
            }
        }
        #expect(checked > 5_000)
        #expect(configuredCount > 100)
    }

    @Test("a configured device's serial settings are the protocol's defaults with INFUSION_BAUD applied")
    func effectiveSettings() {
        #expect(Self.configured(.syringePump, .newEra).configured?.serialSettings == .newEra19200)
        #expect(Self.configured(.syringePump, .fresenius).configured?.serialSettings == .fresenius19200)
        #expect(Self.configured(.oximeter, .contec, baud: .b19200).configured?.serialSettings?.description == "19200 8N1")
        #expect(Self.configured(.oximeter, .contec, hid: true).configured?.serialSettings == nil)
        #expect(DeviceProtocolName.allCases.map(\.rawValue)
            == ["newera", "alaris", "fresenius", "nonin-df2", "nonin-df7", "nonin-df8", "masimo", "contec", "mt-sics"])
    }

    @Test("the classifier reads exactly the four INFUSION_* properties")
    func propertySet() {
        #expect(DeviceClassifier.infusionProperties == ["INFUSION_ROLE", "INFUSION_PROTOCOL", "INFUSION_BAUD", "INFUSION_ADDRESS"])
    }
}
