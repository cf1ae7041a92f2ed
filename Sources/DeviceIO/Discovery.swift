import CUdev
import Glibc
import Logging
import Synchronization

/// The USB identity of a device node's USB parent, as udev reports it (hex ids as 4 lower-case digits).
public struct USBIdentity: Sendable, Hashable, Codable {
    /// `ID_VENDOR_ID`, e.g. "0403".
    public var vendorID: String?
    /// `ID_MODEL_ID`, e.g. "6001".
    public var productID: String?
    /// `ID_SERIAL_SHORT` (the adapter's serial number), when it has one.
    public var serial: String?
    /// `ID_VENDOR` (manufacturer string).
    public var vendorName: String?
    /// `ID_MODEL` (product string).
    public var productName: String?
    /// `ID_USB_INTERFACE_NUM`, e.g. "00".
    public var interfaceNumber: String?
    /// `ID_PATH`, the physical port path, e.g. "pci-0000:00:14.0-usb-0:3:1.0".
    public var portPath: String?

    /// An identity with the given fields.
    public init(
        vendorID: String? = nil, productID: String? = nil, serial: String? = nil, vendorName: String? = nil,
        productName: String? = nil, interfaceNumber: String? = nil, portPath: String? = nil
    ) {
        self.vendorID = vendorID
        self.productID = productID
        self.serial = serial
        self.vendorName = vendorName
        self.productName = productName
        self.interfaceNumber = interfaceNumber
        self.portPath = portPath
    }

    /// "0403:6001", or nil without both ids.
    public var usbID: String? {
        guard let vendorID, let productID else { return nil }
        return "\(vendorID):\(productID)"
    }
}

/// One tty or hidraw device node as udev sees it, with its classification. A plain value.
public struct DiscoveredDevice: Sendable, Hashable, Codable, Identifiable {
    /// The sysfs path: stable while the device stays plugged in, unique.
    public var id: String { sysPath }
    /// "tty" or "hidraw".
    public let subsystem: String
    /// The device node, e.g. /dev/ttyUSB0 (absent on some remove events).
    public let node: String?
    /// The sysfs path, e.g. /sys/devices/pci0000:00/…/ttyUSB0.
    public let sysPath: String
    /// Every symlink udev made for it (`DEVLINKS`), sorted.
    public let links: [String]
    /// USB identity, when the device is on USB.
    public let usb: USBIdentity?
    /// All udev properties, after filling `ID_VENDOR_ID`/`ID_MODEL_ID`/`ID_SERIAL_SHORT` from the
    /// USB parent's attributes when udev's database had none (hidraw nodes, or no udevd running).
    public let properties: [String: String]
    /// What it is, from `DeviceClassifier.classify(properties)`.
    public let classification: DeviceClassification

    /// Builds a device from what udev reported. Pure. `usbParentAttributes` are the sysfs attributes
    /// of the USB parent (`idVendor`, `idProduct`, `serial`, `manufacturer`, `product`), used only where
    /// the properties lack the corresponding `ID_*` value.
    public init(
        subsystem: String, node: String?, sysPath: String, properties: [String: String], links: [String] = [],
        usbParentAttributes: [String: String] = [:]
    ) {
        var merged = properties
        merged["SUBSYSTEM"] = merged["SUBSYSTEM"] ?? subsystem
        let fill = [
            ("ID_VENDOR_ID", "idVendor"), ("ID_MODEL_ID", "idProduct"), ("ID_SERIAL_SHORT", "serial"),
            ("ID_VENDOR", "manufacturer"), ("ID_MODEL", "product"),
        ]
        for (property, attribute) in fill where merged[property] == nil {
            if let value = usbParentAttributes[attribute]?.trimmingWhitespace, !value.isEmpty {
                merged[property] = attribute.hasPrefix("id") ? value.lowercased() : value
            }
        }
        if !usbParentAttributes.isEmpty && merged["ID_BUS"] == nil { merged["ID_BUS"] = "usb" }
        var allLinks = Set(links)
        for link in (merged["DEVLINKS"] ?? "").split(separator: " ") { allLinks.insert(String(link)) }
        self.subsystem = subsystem
        self.node = node ?? merged["DEVNAME"]
        self.sysPath = sysPath
        self.links = allLinks.sorted()
        self.properties = merged
        if merged["ID_BUS"] == "usb" || merged["ID_VENDOR_ID"] != nil {
            usb = USBIdentity(
                vendorID: merged["ID_VENDOR_ID"], productID: merged["ID_MODEL_ID"], serial: merged["ID_SERIAL_SHORT"],
                vendorName: merged["ID_VENDOR"], productName: merged["ID_MODEL"],
                interfaceNumber: merged["ID_USB_INTERFACE_NUM"], portPath: merged["ID_PATH"])
        } else {
            usb = nil
        }
        classification = DeviceClassifier.classify(merged)
    }

    /// The best stable name: our /dev/infusion/… link, then /dev/serial/by-id, then by-path, then any.
    public var stableLink: String? {
        links.first { $0.hasPrefix("/dev/infusion/") } ?? links.first { $0.hasPrefix("/dev/serial/by-id/") }
            ?? links.first { $0.hasPrefix("/dev/serial/by-path/") } ?? links.first
    }

    /// Whether a listing should show it by default: anything classified, plus any USB serial node
    /// (an adapter missing from the table is still worth seeing).
    public var isOfInterest: Bool {
        switch classification {
        case .unrecognized: usb != nil
        default: true
        }
    }

    /// Whether a node found while enumerating is real hardware worth listing: not a virtual tty
    /// (consoles, ptmx), and not a legacy ttyS port without a UART (`type` 0). Pure.
    public static func isHardware(sysPath: String, subsystem: String, uartType: String?) -> Bool {
        if sysPath.contains("/devices/virtual/") { return false }
        if subsystem == "tty", uartType?.trimmingWhitespace == "0" { return false }
        return true
    }
}

/// A hot-plug event for a tty or hidraw node.
public enum DeviceEvent: Sendable, Hashable {
    /// A device appeared (udev finished its rules: links and properties are in place).
    case added(DiscoveredDevice)
    /// A device went away.
    case removed(DiscoveredDevice)
    /// udev re-ran its rules (`udevadm trigger`, a rules change): properties may differ.
    case changed(DiscoveredDevice)

    /// The device concerned.
    public var device: DiscoveredDevice {
        switch self {
        case .added(let device), .removed(let device), .changed(let device): device
        }
    }

    /// The event for a udev action, or nil for actions that do not change presence (bind, unbind, move…).
    public static func from(action: String, device: DiscoveredDevice) -> DeviceEvent? {
        switch action {
        case "add": .added(device)
        case "remove": .removed(device)
        case "change": .changed(device)
        default: nil
        }
    }
}

/// The devices present, kept current by applying events idempotently (an `add` for a device already
/// present from the initial enumeration is not news). A pure value.
public struct DeviceInventory: Sendable, Hashable {
    /// Present devices by sysfs path.
    public private(set) var devices: [String: DiscoveredDevice] = [:]

    /// An inventory holding `initial`.
    public init(_ initial: [DiscoveredDevice] = []) {
        for device in initial { devices[device.sysPath] = device }
    }

    /// Applies `event`; returns the event to report, or nil when it changes nothing (a duplicate add,
    /// a remove of an unknown device, a change that changed nothing).
    public mutating func apply(_ event: DeviceEvent) -> DeviceEvent? {
        let device = event.device
        switch event {
        case .added, .changed:
            let previous = devices.updateValue(device, forKey: device.sysPath)
            if previous == device { return nil }
            return previous == nil ? .added(device) : .changed(device)
        case .removed:
            guard let previous = devices.removeValue(forKey: device.sysPath) else { return nil }
            return .removed(previous)
        }
    }
}

/// Enumerates tty and hidraw devices through libudev.
public enum DeviceDiscovery {
    /// The subsystems discovery looks at.
    public static let subsystems = ["tty", "hidraw"]

    /// The tty and hidraw devices present now, hardware only (see `DiscoveredDevice.isHardware`),
    /// sorted by node. Any thread; reads /sys and udev's database, no device is opened.
    public static func scan() throws(DeviceIOError) -> [DiscoveredDevice] {
        let context = try UdevContext()
        return context.lock.withLock { _ in context.enumerate() }
    }
}

/// Watches udev for tty and hidraw devices coming and going.
///
/// Order (so nothing is missed): `init` opens the netlink monitor ("udev" events: after the rules
/// ran, so links and `INFUSION_*` properties are in place) before anything else; then call
/// `snapshot()` for what is present, then `start(handler:)`. Events that happened between the two
/// are delivered, so the same device may show up in both: feed both into a `DeviceInventory`.
///
/// Without a running systemd-udevd (e.g. in a container; `udevdRunning` is false) the monitor opens
/// but no event ever arrives.
///
/// Thread rules: any method from any thread. The handler runs on the monitor's own thread, one
/// event at a time. `close()` stops and joins that thread (not waiting when called from the handler);
/// idempotent. A started monitor runs until `close()` (its thread keeps it alive).
public final class DeviceMonitor: Sendable {
    /// Whether systemd-udevd runs (its control socket exists); without it no events arrive.
    public let udevdRunning: Bool
    private let context: UdevContext
    private let monitor: UdevPointer
    private let wake: (read: Int32, write: Int32)
    private let thread = Mutex<JoinableThread?>(nil)
    private let state = Mutex<(started: Bool, closed: Bool)>((false, false))
    private static let logger = Logger(label: "infusion.deviceio.udev-monitor")

    /// Opens the netlink monitor for tty and hidraw. Throws `.udevUnavailable` when libudev or
    /// netlink cannot be used.
    public init() throws(DeviceIOError) {
        let context = try UdevContext()
        guard let monitor = udev_monitor_new_from_netlink(context.udev.pointer, "udev") else {
            throw .udevUnavailable(operation: "udev_monitor_new_from_netlink", errno: errno)
        }
        for subsystem in DeviceDiscovery.subsystems {
            _ = udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem, nil)
        }
        let enabled = udev_monitor_enable_receiving(monitor)
        guard enabled >= 0 else {
            udev_monitor_unref(monitor)
            throw .udevUnavailable(operation: "udev_monitor_enable_receiving", errno: -enabled)
        }
        var pipeEnds: (Int32, Int32) = (-1, -1)
        let piped = withUnsafeMutablePointer(to: &pipeEnds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { infusionPipe($0) }
        }
        guard piped == 0 else {
            let code = errno
            udev_monitor_unref(monitor)
            throw .system(path: "udev monitor", operation: "pipe2", errno: code)
        }
        self.context = context
        self.monitor = UdevPointer(monitor)
        wake = (pipeEnds.0, pipeEnds.1)
        udevdRunning = access("/run/udev/control", F_OK) == 0
        if !udevdRunning {
            Self.logger.debug("systemd-udevd is not running (/run/udev/control missing): no hot-plug events will arrive")
        }
    }

    deinit {
        close()
        udev_monitor_unref(monitor.pointer)
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    /// The devices present now (call after `init`, before or after `start`). Any thread.
    public func snapshot() -> [DiscoveredDevice] {
        context.lock.withLock { _ in context.enumerate() }
    }

    /// Starts the monitor thread delivering events to `handler`. Throws `.alreadyStarted` or
    /// `.closed` when misused.
    public func start(handler: @escaping @Sendable (DeviceEvent) -> Void) throws(DeviceIOError) {
        try thread.withLock { slot throws(DeviceIOError) in
            let allowed = state.withLock { s -> DeviceIOError? in
                if s.closed { return .closed(path: "udev monitor") }
                if s.started { return .alreadyStarted(path: "udev monitor") }
                s.started = true
                return nil
            }
            if let allowed { throw allowed }
            slot = try JoinableThread(name: "udev monitor") { [self] in run(handler: handler) }
        }
    }

    /// Stops the monitor thread and waits for it. Idempotent; any thread.
    public func close() {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        var one: UInt8 = 1
        _ = Glibc.write(wake.write, &one, 1)
        let running = thread.withLock { $0 }
        running?.join()
    }

    private func run(handler: @Sendable (DeviceEvent) -> Void) {
        let fd = context.lock.withLock { _ in udev_monitor_get_fd(monitor.pointer) }
        while true {
            var fds = (pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0))
            let ready = withUnsafeMutablePointer(to: &fds) {
                $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, -1) }
            }
            if ready < 0 {
                if errno == EINTR { continue }
                Self.logger.error("udev monitor poll failed", metadata: ["errno": "\(errno)"])
                return
            }
            if fds.1.revents != 0 { return }
            if fds.0.revents & Int16(POLLERR | POLLNVAL) != 0 {
                Self.logger.error("udev monitor socket failed")
                return
            }
            let events: [DeviceEvent] = context.lock.withLock { _ in
                var received: [DeviceEvent] = []
                while let device = udev_monitor_receive_device(monitor.pointer) {
                    defer { udev_device_unref(device) }
                    let action = udev_device_get_action(device).map { String(cString: $0) } ?? ""
                    guard let discovered = context.makeDevice(device, requireHardware: action != "remove"),
                        let event = DeviceEvent.from(action: action, device: discovered)
                    else { continue }
                    received.append(event)
                }
                return received
            }
            for event in events { handler(event) }
        }
    }
}

/// A C pointer that this module only uses under a lock.
struct UdevPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// A libudev context. libudev objects are not thread-safe: every use holds `lock`.
final class UdevContext: Sendable {
    let udev: UdevPointer
    let lock = Mutex<Void>(())

    init() throws(DeviceIOError) {
        guard let udev = udev_new() else { throw .udevUnavailable(operation: "udev_new", errno: errno) }
        self.udev = UdevPointer(udev)
    }

    deinit { udev_unref(udev.pointer) }

    /// Enumerates tty and hidraw devices. Call with `lock` held.
    func enumerate() -> [DiscoveredDevice] {
        guard let enumerator = udev_enumerate_new(udev.pointer) else { return [] }
        defer { udev_enumerate_unref(enumerator) }
        for subsystem in DeviceDiscovery.subsystems { _ = udev_enumerate_add_match_subsystem(enumerator, subsystem) }
        _ = udev_enumerate_scan_devices(enumerator)
        var devices: [DiscoveredDevice] = []
        var entry = udev_enumerate_get_list_entry(enumerator)
        while let current = entry {
            defer { entry = udev_list_entry_get_next(current) }
            guard let name = udev_list_entry_get_name(current),
                let device = udev_device_new_from_syspath(udev.pointer, name)
            else { continue }
            defer { udev_device_unref(device) }
            if let discovered = makeDevice(device, requireHardware: true) { devices.append(discovered) }
        }
        return devices.sorted { ($0.node ?? $0.sysPath) < ($1.node ?? $1.sysPath) }
    }

    /// A `DiscoveredDevice` from a libudev device, or nil when it is virtual (and `requireHardware`).
    /// Call with `lock` held.
    func makeDevice(_ device: OpaquePointer, requireHardware: Bool) -> DiscoveredDevice? {
        guard let sysPath = udev_device_get_syspath(device).map({ String(cString: $0) }) else { return nil }
        let subsystem = udev_device_get_subsystem(device).map { String(cString: $0) } ?? ""
        let uartType = subsystem == "tty" ? udev_device_get_sysattr_value(device, "type").map { String(cString: $0) } : nil
        if requireHardware && !DiscoveredDevice.isHardware(sysPath: sysPath, subsystem: subsystem, uartType: uartType) {
            return nil
        }
        var properties: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            if let name = udev_list_entry_get_name(current) {
                properties[String(cString: name)] = udev_list_entry_get_value(current).map { String(cString: $0) } ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        var links: [String] = []
        entry = udev_device_get_devlinks_list_entry(device)
        while let current = entry {
            if let name = udev_list_entry_get_name(current) { links.append(String(cString: name)) }
            entry = udev_list_entry_get_next(current)
        }
        var parentAttributes: [String: String] = [:]
        // The parent belongs to `device` and must not be unref'd separately.
        if let parent = udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_device") {
            for attribute in ["idVendor", "idProduct", "serial", "manufacturer", "product"] {
                if let value = udev_device_get_sysattr_value(parent, attribute) {
                    parentAttributes[attribute] = String(cString: value)
                }
            }
        }
        let node = udev_device_get_devnode(device).map { String(cString: $0) }
        return DiscoveredDevice(
            subsystem: subsystem, node: node, sysPath: sysPath, properties: properties, links: links,
            usbParentAttributes: parentAttributes)
    }
}

/// Whether this user may open a device node for reading and writing (`access(2)` with R_OK|W_OK).
public enum DeviceAccess: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Read and write allowed.
    case allowed
    /// Not allowed: install the udev rules and join the group (udev/README.md).
    case permissionDenied
    /// The node does not exist.
    case missing
    /// Another errno.
    case failed(errno: Int32)

    /// Checks `path` now. Any thread; opens nothing.
    public static func check(_ path: String) -> DeviceAccess {
        if access(path, R_OK | W_OK) == 0 { return .allowed }
        switch errno {
        case EACCES, EPERM, EROFS: return .permissionDenied
        case ENOENT, ENOTDIR: return .missing
        case let code: return .failed(errno: code)
        }
    }

    /// True when the user may open it.
    public var isAllowed: Bool { self == .allowed }

    /// A short human-readable form, for logs and listings.
    public var description: String {
        switch self {
        case .allowed: "read/write allowed"
        case .permissionDenied: "permission denied: install the udev rules and join the infusion group (udev/README.md)"
        case .missing: "node missing"
        case .failed(let code): "cannot check access: \(errnoText(code))"
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and newlines.
    var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
