/// What a device is for. The udev property `INFUSION_ROLE` carries the raw value ("pump" is
/// accepted as another spelling of "syringe-pump"); stable links are `/dev/infusion/<linkPrefix><n>`.
public enum DeviceRole: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// A syringe (or infusion) pump.
    case syringePump = "syringe-pump"
    /// A pulse oximeter.
    case oximeter
    /// A laboratory balance, for gravimetric calibration.
    case balance

    /// The role for an `INFUSION_ROLE` value, or nil when it is not one of ours (exact spelling).
    public init?(udevValue: String) {
        if udevValue == "pump" {
            self = .syringePump
        } else if let role = DeviceRole(rawValue: udevValue) {
            self = role
        } else {
            return nil
        }
    }

    /// The accepted `INFUSION_ROLE` spellings.
    public static let udevValues: [String] = ["syringe-pump", "pump", "oximeter", "balance"]

    /// The start of the stable link name: `pump`, `oximeter`, `balance`.
    public var linkPrefix: String {
        switch self {
        case .syringePump: "pump"
        case .oximeter: "oximeter"
        case .balance: "balance"
        }
    }

    /// A short human-readable form, for logs and listings.
    public var description: String { rawValue }
}

/// The wire protocols InfusionControl speaks; the raw value is the `INFUSION_PROTOCOL` spelling,
/// used across the project (drivers, simulators, configuration).
public enum DeviceProtocolName: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// New Era NE-300/500/1000/1600/4000 syringe pumps.
    case newEra = "newera"
    /// Alaris (CareFusion/BD) Asena syringe pumps.
    case alaris
    /// Fresenius Kabi Base A / Agilia / Injectomat.
    case fresenius
    /// Nonin serial data format 2.
    case noninDF2 = "nonin-df2"
    /// Nonin serial data format 7.
    case noninDF7 = "nonin-df7"
    /// Nonin serial data format 8.
    case noninDF8 = "nonin-df8"
    /// Masimo Radical-5/7, Rad-8 "ASCII 1".
    case masimo
    /// Contec CMS50D+/E/F/60C (V7.0 serial, or the HID variant over hidraw).
    case contec
    /// Mettler Toledo MT-SICS balances.
    case mtSics = "mt-sics"

    /// The role every device speaking this protocol has.
    public var role: DeviceRole {
        switch self {
        case .newEra, .alaris, .fresenius: .syringePump
        case .noninDF2, .noninDF7, .noninDF8, .masimo, .contec: .oximeter
        case .mtSics: .balance
        }
    }

    /// The device's factory serial settings (reference/protocols.md); `INFUSION_BAUD` overrides the rate.
    public var defaultSerialSettings: SerialSettings {
        switch self {
        case .newEra: .newEra19200
        case .alaris: .alaris38400
        case .fresenius: .fresenius19200
        case .noninDF2, .noninDF7, .noninDF8: .nonin9600
        case .masimo: .masimo9600
        case .contec: .contec115200
        case .mtSics: .mtSics9600
        }
    }

    /// The valid `INFUSION_ADDRESS` values, or nil when the protocol has no addresses.
    /// New Era: pump address 0…99 on a daisy chain; Fresenius: 0 = the base, 1…5 = rack slots.
    public var addressRange: ClosedRange<Int>? {
        switch self {
        case .newEra: 0...99
        case .fresenius: 0...5
        default: nil
        }
    }

    /// Whether the protocol is spoken over a hidraw node (only the Contec HID variant).
    public var supportsHIDRaw: Bool { self == .contec }

    /// Whether the protocol is spoken over a serial (tty) node.
    public var supportsSerial: Bool { true }

    /// A short human-readable form, for logs and listings.
    public var description: String { rawValue }
}

/// A USB device model the classifier recognises without any udev configuration.
public struct KnownAdapter: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What the adapter is.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// A USB-serial bridge: any of our serial devices may be behind it.
        case serialBridge = "serial-bridge"
        /// A USB HID pulse oximeter (Contec CMS50E HID variant).
        case hidOximeter = "hid-oximeter"
    }

    /// USB vendor id.
    public let vendorID: UInt16
    /// USB product id.
    public let productID: UInt16
    /// Chip or product name, e.g. "FTDI FT232R".
    public let name: String
    /// Bridge or HID oximeter.
    public let kind: Kind
    /// What to know about it (e.g. "no unique serial number: bind by ID_PATH").
    public let note: String?

    /// An adapter entry.
    public init(vendorID: UInt16, productID: UInt16, name: String, kind: Kind, note: String? = nil) {
        self.vendorID = vendorID
        self.productID = productID
        self.name = name
        self.kind = kind
        self.note = note
    }

    /// "0403:6001"
    public var usbID: String { hex4(vendorID) + ":" + hex4(productID) }

    /// A short human-readable form, for logs and listings.
    public var description: String { "\(name) (\(usbID))" }

    /// The adapters of reference/protocols.md §C1.
    public static let table: [KnownAdapter] = [
        KnownAdapter(vendorID: 0x0403, productID: 0x6001, name: "FTDI FT232R/FT232BM/FT245", kind: .serialBridge,
                     note: "unique serial number: bind by ID_SERIAL_SHORT"),
        KnownAdapter(vendorID: 0x0403, productID: 0x6010, name: "FTDI FT2232", kind: .serialBridge,
                     note: "one node per interface: bind by serial and ID_USB_INTERFACE_NUM"),
        KnownAdapter(vendorID: 0x0403, productID: 0x6011, name: "FTDI FT4232H", kind: .serialBridge,
                     note: "one node per interface: bind by serial and ID_USB_INTERFACE_NUM"),
        KnownAdapter(vendorID: 0x0403, productID: 0x6014, name: "FTDI FT232H", kind: .serialBridge,
                     note: "unique serial number: bind by ID_SERIAL_SHORT"),
        KnownAdapter(vendorID: 0x0403, productID: 0x6015, name: "FTDI FT-X (FT230X/FT231X)", kind: .serialBridge,
                     note: "unique serial number: bind by ID_SERIAL_SHORT"),
        KnownAdapter(vendorID: 0x067B, productID: 0x2303, name: "Prolific PL2303", kind: .serialBridge,
                     note: "usually no serial number: bind by ID_PATH"),
        KnownAdapter(vendorID: 0x067B, productID: 0x23A3, name: "Prolific PL2303GC/GS/GT", kind: .serialBridge,
                     note: "no serial number: bind by ID_PATH"),
        KnownAdapter(vendorID: 0x10C4, productID: 0xEA60, name: "Silicon Labs CP210x", kind: .serialBridge,
                     note: "also the Contec CMS50D+/F oximeter cable; serial often the default 0001: bind by ID_PATH"),
        KnownAdapter(vendorID: 0x10C4, productID: 0xEA70, name: "Silicon Labs CP2105", kind: .serialBridge,
                     note: "two interfaces: bind by ID_PATH and ID_USB_INTERFACE_NUM"),
        KnownAdapter(vendorID: 0x10C4, productID: 0xEA71, name: "Silicon Labs CP2108", kind: .serialBridge,
                     note: "four interfaces: bind by ID_PATH and ID_USB_INTERFACE_NUM"),
        KnownAdapter(vendorID: 0x1A86, productID: 0x7523, name: "WCH CH340/CH341", kind: .serialBridge,
                     note: "no serial number: bind by ID_PATH"),
        KnownAdapter(vendorID: 0x1A86, productID: 0x5523, name: "WCH CH341", kind: .serialBridge,
                     note: "no serial number: bind by ID_PATH"),
        KnownAdapter(vendorID: 0x1A86, productID: 0x55D4, name: "WCH CH9102/CH343", kind: .serialBridge,
                     note: "appears as /dev/ttyACMn"),
        KnownAdapter(vendorID: 0x28E9, productID: 0x028A, name: "Contec CMS50E (HID)", kind: .hidOximeter,
                     note: "HID oximeter: INFUSION_PROTOCOL=contec on its hidraw node"),
        KnownAdapter(vendorID: 0x11CA, productID: 0x0224, name: "Contec CMS50E (HID)", kind: .hidOximeter,
                     note: "HID oximeter: INFUSION_PROTOCOL=contec on its hidraw node"),
    ]

    /// The table entry for a vendor and product id, if any.
    public static func lookup(vendorID: UInt16, productID: UInt16) -> KnownAdapter? {
        table.first { $0.vendorID == vendorID && $0.productID == productID }
    }
}

/// A device our udev rules configured: role and protocol, with the optional rate and address.
public struct ConfiguredDevice: Sendable, Hashable, Codable {
    /// How the device is attached.
    public enum Transport: String, Sendable, Hashable, Codable {
        /// A tty node (serial port or USB-serial adapter).
        case serial
        /// A hidraw node.
        case hidraw
    }

    /// What the device is for.
    public let role: DeviceRole
    /// The wire protocol it speaks.
    public let protocolName: DeviceProtocolName
    /// Serial or hidraw.
    public let transport: Transport
    /// `INFUSION_BAUD`, when given.
    public let baudRate: BaudRate?
    /// `INFUSION_ADDRESS`, when given (pump address on a chain or rack slot).
    public let address: Int?

    /// A configured device.
    public init(role: DeviceRole, protocolName: DeviceProtocolName, transport: Transport, baudRate: BaudRate?, address: Int?) {
        self.role = role
        self.protocolName = protocolName
        self.transport = transport
        self.baudRate = baudRate
        self.address = address
    }

    /// The settings to open it with: the protocol's defaults with `INFUSION_BAUD` applied; nil for hidraw.
    public var serialSettings: SerialSettings? {
        guard transport == .serial else { return nil }
        var settings = protocolName.defaultSerialSettings
        if let baudRate { settings.baudRate = baudRate }
        return settings
    }
}

/// What the classifier concluded about one device node.
public enum DeviceClassification: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Our udev rules say what it is.
    case configured(ConfiguredDevice)
    /// Our udev properties are present but wrong; `reason` says what to fix. Never used as a guess.
    case misconfigured(reason: String)
    /// A known USB-serial bridge without our properties: "serial adapter, not configured".
    case serialAdapterNotConfigured(KnownAdapter)
    /// A known HID pulse oximeter without our properties.
    case hidOximeterCandidate(KnownAdapter)
    /// Nothing we know.
    case unrecognized

    /// A short phrase for listings.
    public var summary: String {
        switch self {
        case .configured(let device):
            var text = "\(device.role) (\(device.protocolName))"
            if let settings = device.serialSettings { text += ", \(settings)" }
            if let address = device.address { text += ", address \(address)" }
            return text
        case .misconfigured(let reason): return "misconfigured: \(reason)"
        case .serialAdapterNotConfigured(let adapter): return "serial adapter, not configured: \(adapter)"
        case .hidOximeterCandidate(let adapter): return "HID oximeter candidate, not configured: \(adapter)"
        case .unrecognized: return "not recognised"
        }
    }

    /// A short human-readable form, for logs and listings.
    public var description: String { summary }

    /// The configured device, if any.
    public var configured: ConfiguredDevice? {
        if case .configured(let device) = self { return device }
        return nil
    }
}

/// Classifies a device from its udev properties. A pure function: no I/O, same answer for the same
/// dictionary. Thread-safe.
///
/// Order: our `INFUSION_*` properties decide first (all values checked strictly; an unknown value,
/// an unknown `INFUSION_` key, or a contradiction is `.misconfigured` with the reason, never
/// guessed); without any of them, the adapter table decides by `ID_VENDOR_ID`/`ID_MODEL_ID`
/// (hex, as udev's usb_id sets them); `SUBSYSTEM` says tty or hidraw.
public enum DeviceClassifier {
    /// `INFUSION_ROLE`: syringe-pump (or pump), oximeter, balance. Optional: the protocol implies it.
    public static let roleProperty = "INFUSION_ROLE"
    /// `INFUSION_PROTOCOL`: one of `DeviceProtocolName`'s raw values. Required for a configured device.
    public static let protocolProperty = "INFUSION_PROTOCOL"
    /// `INFUSION_BAUD`: optional baud rate overriding the protocol's default (serial only).
    public static let baudProperty = "INFUSION_BAUD"
    /// `INFUSION_ADDRESS`: optional device address, for protocols that have one.
    public static let addressProperty = "INFUSION_ADDRESS"

    /// Every `INFUSION_*` property the classifier reads: exactly the set the udev rules may set
    /// (a test checks udev/70-infusion-devices.rules against it).
    public static let infusionProperties: Set<String> = [roleProperty, protocolProperty, baudProperty, addressProperty]

    private static let rulesHint = " (see udev/70-infusion-devices.rules and udev/README.md)"

    /// The classification of a device with udev properties `properties`.
    public static func classify(_ properties: [String: String]) -> DeviceClassification {
        let isHIDRaw = properties["SUBSYSTEM"] == "hidraw"
        // udev drops a property set to "", so an empty value counts as absent.
        let ours = properties.filter { $0.key.hasPrefix("INFUSION_") && !$0.value.isEmpty }
        if !ours.isEmpty {
            return classifyConfigured(ours, isHIDRaw: isHIDRaw)
        }
        guard let vendor = properties["ID_VENDOR_ID"].flatMap(parseHex4),
            let product = properties["ID_MODEL_ID"].flatMap(parseHex4),
            let adapter = KnownAdapter.lookup(vendorID: vendor, productID: product)
        else { return .unrecognized }
        switch (adapter.kind, isHIDRaw) {
        case (.serialBridge, false): return .serialAdapterNotConfigured(adapter)
        case (.hidOximeter, true): return .hidOximeterCandidate(adapter)
        default: return .unrecognized  // e.g. the HID oximeter's other interfaces
        }
    }

    private static func classifyConfigured(_ ours: [String: String], isHIDRaw: Bool) -> DeviceClassification {
        let unknownKeys = ours.keys.filter { !infusionProperties.contains($0) }.sorted()
        if !unknownKeys.isEmpty {
            return .misconfigured(
                reason: "unknown udev propert\(unknownKeys.count == 1 ? "y" : "ies") \(unknownKeys.joined(separator: ", ")): "
                    + "only \(infusionProperties.sorted().joined(separator: ", ")) are read" + rulesHint)
        }
        var role: DeviceRole?
        if let value = ours[roleProperty] {
            guard let parsed = DeviceRole(udevValue: value) else {
                return .misconfigured(
                    reason: "\(roleProperty)=\"\(value)\" is not a known role: use one of "
                        + DeviceRole.udevValues.joined(separator: ", ") + rulesHint)
            }
            role = parsed
        }
        guard let protocolValue = ours[protocolProperty] else {
            let present = ours.keys.sorted().joined(separator: ", ")
            return .misconfigured(
                reason: "\(present) set but \(protocolProperty) is missing: add ENV{\(protocolProperty)}=\"…\" with one of "
                    + DeviceProtocolName.allCases.map(\.rawValue).joined(separator: ", ") + rulesHint)
        }
        guard let protocolName = DeviceProtocolName(rawValue: protocolValue) else {
            return .misconfigured(
                reason: "\(protocolProperty)=\"\(protocolValue)\" is not a known protocol: use one of "
                    + DeviceProtocolName.allCases.map(\.rawValue).joined(separator: ", ") + rulesHint)
        }
        if let role, role != protocolName.role {
            return .misconfigured(
                reason: "\(roleProperty)=\(role) contradicts \(protocolProperty)=\(protocolName), which is a "
                    + "\(protocolName.role) protocol: fix one of them" + rulesHint)
        }
        if isHIDRaw && !protocolName.supportsHIDRaw {
            return .misconfigured(
                reason: "\(protocolProperty)=\(protocolName) is set on a hidraw node, but \(protocolName) is a serial protocol: "
                    + "set it on the tty node instead" + rulesHint)
        }
        var baudRate: BaudRate?
        if let value = ours[baudProperty] {
            if isHIDRaw {
                return .misconfigured(reason: "\(baudProperty)=\(value) is set on a hidraw node, which has no baud rate" + rulesHint)
            }
            guard value.allSatisfy(\.isASCIIDigitCharacter), let number = Int(value), let rate = BaudRate(rawValue: number) else {
                return .misconfigured(
                    reason: "\(baudProperty)=\"\(value)\" is not a supported baud rate: use one of "
                        + BaudRate.allCases.map { String($0.rawValue) }.joined(separator: ", ") + rulesHint)
            }
            baudRate = rate
        }
        var address: Int?
        if let value = ours[addressProperty] {
            guard let range = protocolName.addressRange else {
                return .misconfigured(
                    reason: "\(addressProperty)=\(value) is set, but \(protocolName) devices have no address: remove it" + rulesHint)
            }
            guard value.allSatisfy(\.isASCIIDigitCharacter), value.count <= 3, let number = Int(value), range.contains(number) else {
                return .misconfigured(
                    reason: "\(addressProperty)=\"\(value)\" is not a valid \(protocolName) address: use a whole number from "
                        + "\(range.lowerBound) to \(range.upperBound)" + rulesHint)
            }
            address = number
        }
        return .configured(
            ConfiguredDevice(
                role: protocolName.role, protocolName: protocolName, transport: isHIDRaw ? .hidraw : .serial,
                baudRate: baudRate, address: address))
    }
}

/// "0403" → 0x0403; nil unless exactly 4 hex digits.
func parseHex4(_ text: String) -> UInt16? {
    guard text.utf8.count == 4, text.allSatisfy(\.isHexDigit) else { return nil }
    return UInt16(text, radix: 16)
}

/// 0x0403 → "0403".
func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

extension Character {
    /// 0-9 only (not other scripts' digits).
    var isASCIIDigitCharacter: Bool { isASCII && isWholeNumber }
}
