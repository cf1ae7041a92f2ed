import CLibUSB
import Glibc
import Logging
import Synchronization

/// Identifies a USB device while it stays plugged in: bus number and device address (the kernel
/// gives a re-plugged device a new address).
public struct USBDeviceKey: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Bus number.
    public let bus: UInt8
    /// Device address on the bus.
    public let address: UInt8

    /// A key.
    public init(bus: UInt8, address: UInt8) {
        self.bus = bus
        self.address = address
    }

    /// A short human-readable form, for logs and listings.
    public var description: String { "bus \(bus) address \(address)" }
}

/// One USB device as libusb reports it.
public struct USBDeviceInfo: Sendable, Hashable, Codable {
    /// Bus number and address.
    public let key: USBDeviceKey
    /// Port numbers from the root hub, e.g. [3, 1] (the physical position).
    public let portNumbers: [UInt8]
    /// idVendor.
    public let vendorID: UInt16
    /// idProduct.
    public let productID: UInt16
    /// The serial-number string, when readable without detaching any driver (nil otherwise).
    public let serialNumber: String?
    /// The manufacturer string, when readable.
    public let manufacturer: String?
    /// The product string, when readable.
    public let product: String?

    /// A device description.
    public init(
        key: USBDeviceKey, portNumbers: [UInt8] = [], vendorID: UInt16, productID: UInt16, serialNumber: String? = nil,
        manufacturer: String? = nil, product: String? = nil
    ) {
        self.key = key
        self.portNumbers = portNumbers
        self.vendorID = vendorID
        self.productID = productID
        self.serialNumber = serialNumber
        self.manufacturer = manufacturer
        self.product = product
    }

    /// "0403:6001".
    public var usbID: String { hex4(vendorID) + ":" + hex4(productID) }

    /// The adapter table's entry for it, if any.
    public var knownAdapter: KnownAdapter? { KnownAdapter.lookup(vendorID: vendorID, productID: productID) }
}

/// A libusb context: lists USB devices. With no USB bus (a container) it initialises and lists
/// nothing.
///
/// Ownership and threads: owns the `libusb_context` until deinit (`libusb_exit`); a
/// `USBHotplugMonitor` keeps its context alive. Methods may be called from any thread (libusb
/// contexts are thread-safe).
public final class USBContext: Sendable {
    let context: USBPointer
    private static let logger = Logger(label: "infusion.deviceio.usb")

    /// Initialises libusb. Throws `.usb` when libusb cannot start (e.g. no usbfs on some systems).
    public init() throws(DeviceIOError) {
        var raw: OpaquePointer?
        let result = libusb_init(&raw)
        guard result == 0, let raw else { throw usbError("libusb_init", result) }
        context = USBPointer(raw)
    }

    deinit { libusb_exit(context.pointer) }

    /// Whether this libusb supports hot-plug notification.
    public static var supportsHotplug: Bool { libusb_has_capability(UInt32(LIBUSB_CAP_HAS_HOTPLUG.rawValue)) != 0 }

    /// The USB devices present now. With `readStrings`, opens each device briefly (no driver is
    /// detached, no configuration changed) to read its serial-number, manufacturer and product
    /// strings; a device this user may not open just lacks them. Any thread.
    public func devices(readStrings: Bool = true) throws(DeviceIOError) -> [USBDeviceInfo] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context.pointer, &list)
        guard count >= 0, let list else { throw usbError("libusb_get_device_list", Int32(truncatingIfNeeded: count)) }
        defer { libusb_free_device_list(list, 1) }
        var devices: [USBDeviceInfo] = []
        for index in 0..<Int(count) {
            guard let device = list[index], let info = Self.describe(device, readStrings: readStrings) else { continue }
            devices.append(info)
        }
        return devices.sorted { ($0.key.bus, $0.key.address) < ($1.key.bus, $1.key.address) }
    }

    /// Describes `device`; nil when its descriptor cannot be read.
    static func describe(_ device: OpaquePointer, readStrings: Bool) -> USBDeviceInfo? {
        var descriptor = libusb_device_descriptor()
        guard libusb_get_device_descriptor(device, &descriptor) == 0 else { return nil }
        var ports = [UInt8](repeating: 0, count: 8)
        let portCount = libusb_get_port_numbers(device, &ports, Int32(ports.count))
        var serial: String?
        var manufacturer: String?
        var product: String?
        if readStrings {
            var handle: OpaquePointer?
            if libusb_open(device, &handle) == 0, let handle {
                defer { libusb_close(handle) }
                serial = readString(handle, index: descriptor.iSerialNumber)
                manufacturer = readString(handle, index: descriptor.iManufacturer)
                product = readString(handle, index: descriptor.iProduct)
            }
        }
        return USBDeviceInfo(
            key: USBDeviceKey(bus: libusb_get_bus_number(device), address: libusb_get_device_address(device)),
            portNumbers: portCount > 0 ? Array(ports.prefix(Int(portCount))) : [],
            vendorID: descriptor.idVendor, productID: descriptor.idProduct,
            serialNumber: serial, manufacturer: manufacturer, product: product)
    }

    private static func readString(_ handle: OpaquePointer, index: UInt8) -> String? {
        guard index != 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = libusb_get_string_descriptor_ascii(handle, index, &buffer, Int32(buffer.count))
        guard length > 0 else { return nil }
        return String(decoding: buffer.prefix(Int(length)), as: UTF8.self)
    }
}

/// A libusb hot-plug notification, after de-duplication by `USBHotplugTracker`.
public enum USBHotplugEvent: Sendable, Hashable {
    /// A device arrived.
    case arrived(USBDeviceInfo)
    /// A device left.
    case left(USBDeviceInfo)

    /// The device concerned.
    public var device: USBDeviceInfo {
        switch self {
        case .arrived(let device), .left(let device): device
        }
    }
}

/// Makes libusb's hot-plug callbacks idempotent. With `LIBUSB_HOTPLUG_ENUMERATE` a device can arrive
/// twice (once from the registration's enumeration, once from the event loop), and a device can
/// leave that never arrived (it went between enumeration and registration). A pure state machine:
/// feed it every raw callback; it returns the event to report, or nil for a duplicate or an unknown
/// departure.
public struct USBHotplugTracker: Sendable, Hashable {
    /// Devices currently present.
    public private(set) var present: [USBDeviceKey: USBDeviceInfo] = [:]

    /// An empty tracker.
    public init() {}

    /// Applies a raw callback.
    public mutating func apply(_ event: USBHotplugEvent) -> USBHotplugEvent? {
        switch event {
        case .arrived(let device):
            guard present[device.key] == nil else { return nil }
            present[device.key] = device
            return event
        case .left(let device):
            guard let known = present.removeValue(forKey: device.key) else { return nil }
            return .left(known)
        }
    }
}

/// Hot-plug notifications from libusb, where supported (`USBContext.supportsHotplug`).
///
/// Registers an ARRIVED|LEFT callback with `LIBUSB_HOTPLUG_ENUMERATE` (so present devices arrive
/// first) and runs a dedicated event thread looping `libusb_handle_events_timeout_completed`. Raw
/// callbacks pass through a `USBHotplugTracker`, so the handler sees each arrival once and only
/// departures of devices it saw arrive.
///
/// Thread rules: the handler is called on the registering thread during `init` (for devices already
/// present) and on the event thread afterwards, one call at a time; keep it short (hand work to
/// another thread; it must not call `close()` on this monitor). `close()` from any other thread:
/// deregisters, wakes and joins the event thread; idempotent; deinit closes.
public final class USBHotplugMonitor: Sendable {
    private let context: USBContext
    private let box: Unmanaged<CallbackBox>
    private let handle: Int32
    private let thread: JoinableThread
    private let closed = Atomic<Bool>(false)

    private final class CallbackBox: Sendable {
        let handler: @Sendable (USBHotplugEvent) -> Void
        let tracker = Mutex(USBHotplugTracker())
        let stopping = Atomic<Bool>(false)
        init(handler: @escaping @Sendable (USBHotplugEvent) -> Void) { self.handler = handler }

        func handle(_ event: USBHotplugEvent) {
            let report = tracker.withLock { $0.apply(event) }
            if let report { handler(report) }
        }
    }

    /// Registers for arrivals and departures of devices matching `vendorID`/`productID` (nil: any)
    /// and starts the event thread. Throws `.usbHotplugUnsupported` or `.usb`.
    public init(
        context: USBContext, vendorID: UInt16? = nil, productID: UInt16? = nil,
        handler: @escaping @Sendable (USBHotplugEvent) -> Void
    ) throws(DeviceIOError) {
        guard USBContext.supportsHotplug else { throw .usbHotplugUnsupported }
        let box = Unmanaged.passRetained(CallbackBox(handler: handler))
        var callbackHandle: Int32 = 0
        let events = Int32(LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED.rawValue | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT.rawValue)
        let result = libusb_hotplug_register_callback(
            context.context.pointer, events, Int32(LIBUSB_HOTPLUG_ENUMERATE.rawValue),
            vendorID.map(Int32.init) ?? LIBUSB_HOTPLUG_MATCH_ANY, productID.map(Int32.init) ?? LIBUSB_HOTPLUG_MATCH_ANY,
            LIBUSB_HOTPLUG_MATCH_ANY,
            { _, device, event, userData in
                guard let device, let userData else { return 0 }
                let box = Unmanaged<CallbackBox>.fromOpaque(userData).takeUnretainedValue()
                // Descriptors only: opening a device inside the callback is not allowed.
                guard let info = USBContext.describe(device, readStrings: false) else { return 0 }
                box.handle(event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? .arrived(info) : .left(info))
                return 0
            }, box.toOpaque(), &callbackHandle)
        guard result == 0 else {
            box.release()
            throw usbError("libusb_hotplug_register_callback", result)
        }
        let contextPointer = context.context
        let callbacks = box.takeUnretainedValue()
        do throws(DeviceIOError) {
            thread = try JoinableThread(name: "usb events") {
                while !callbacks.stopping.load(ordering: .acquiring) {
                    var timeout = timeval(tv_sec: 0, tv_usec: 250_000)
                    _ = libusb_handle_events_timeout_completed(contextPointer.pointer, &timeout, nil)
                }
            }
        } catch {
            libusb_hotplug_deregister_callback(context.context.pointer, callbackHandle)
            box.release()
            throw error
        }
        self.context = context
        self.box = box
        handle = callbackHandle
    }

    deinit { close() }

    /// Deregisters the callback, stops and joins the event thread. Idempotent; not from the handler.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let callbacks = box.takeUnretainedValue()
        callbacks.stopping.store(true, ordering: .releasing)
        libusb_hotplug_deregister_callback(context.context.pointer, handle)
        libusb_interrupt_event_handler(context.context.pointer)
        thread.join()
        box.release()
    }
}

/// A libusb pointer (libusb contexts are thread-safe).
struct USBPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// The error for a failed libusb call.
func usbError(_ operation: String, _ code: Int32) -> DeviceIOError {
    let name = libusb_error_name(code).map { String(cString: $0) } ?? "LIBUSB_ERROR_\(code)"
    return .usb(operation: operation, code: code, name: name)
}
