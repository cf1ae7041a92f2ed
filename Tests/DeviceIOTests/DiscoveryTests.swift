import Glibc
import Synchronization
import Testing

@testable import DeviceIO

@Suite("udev discovery and hot-plug")
struct DiscoveryTests {
    /// What udev reports for an FTDI cable configured as pump 0 (a real `udevadm info` output, trimmed).
    static let configuredFTDI: [String: String] = [
        "DEVNAME": "/dev/ttyUSB0", "SUBSYSTEM": "tty", "ID_BUS": "usb", "ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001",
        "ID_SERIAL_SHORT": "A502NJ4X", "ID_VENDOR": "FTDI", "ID_MODEL": "FT232R_USB_UART", "ID_USB_INTERFACE_NUM": "00",
        "ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0",
        "DEVLINKS": "/dev/serial/by-path/pci-0000:00:14.0-usb-0:3:1.0-port0 /dev/infusion/pump0 /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A502NJ4X-if00-port0",
        "INFUSION_ROLE": "syringe-pump", "INFUSION_PROTOCOL": "newera", "TAGS": ":systemd:infusion:",
    ]

    @Test("a device is built from its properties: USB identity, links, stable link, classification")
    func deviceFromProperties() {
        let device = DiscoveredDevice(
            subsystem: "tty", node: "/dev/ttyUSB0", sysPath: "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/ttyUSB0/tty/ttyUSB0",
            properties: Self.configuredFTDI)
        #expect(device.usb == USBIdentity(
            vendorID: "0403", productID: "6001", serial: "A502NJ4X", vendorName: "FTDI", productName: "FT232R_USB_UART",
            interfaceNumber: "00", portPath: "pci-0000:00:14.0-usb-0:3:1.0"))
        #expect(device.usb?.usbID == "0403:6001")
        #expect(device.links.count == 3)
        #expect(device.stableLink == "/dev/infusion/pump0")
        #expect(device.classification.configured?.protocolName == .newEra)
        #expect(device.isOfInterest)
    }

    @Test("a hidraw node without udev's usb_id gets its identity from the USB parent's attributes")
    func hidrawFromParent() {
        let device = DiscoveredDevice(
            subsystem: "hidraw", node: "/dev/hidraw2", sysPath: "/sys/devices/…/0003:28E9:028A.0004/hidraw/hidraw2",
            properties: ["DEVNAME": "/dev/hidraw2", "SUBSYSTEM": "hidraw"],
            usbParentAttributes: ["idVendor": "28E9", "idProduct": "028a\n", "manufacturer": "Contec"])
        #expect(device.usb?.usbID == "28e9:028a")
        #expect(device.usb?.vendorName == "Contec")
        guard case .hidOximeterCandidate = device.classification else {
            Issue.record("expected a HID oximeter candidate, got \(device.classification)")
            return
        }
        #expect(device.stableLink == nil)
    }

    @Test("stable link preference: ours, then by-id, then by-path")
    func stableLinkOrder() {
        func device(_ links: [String]) -> DiscoveredDevice {
            DiscoveredDevice(subsystem: "tty", node: "/dev/ttyUSB0", sysPath: "/sys/x", properties: [:], links: links)
        }
        #expect(device(["/dev/serial/by-path/p", "/dev/serial/by-id/i"]).stableLink == "/dev/serial/by-id/i")
        #expect(device(["/dev/serial/by-path/p"]).stableLink == "/dev/serial/by-path/p")
        #expect(device(["/dev/serial/by-path/p", "/dev/infusion/oximeter0", "/dev/serial/by-id/i"]).stableLink == "/dev/infusion/oximeter0")
        #expect(device([]).stableLink == nil)
    }

    @Test("virtual ttys and UART-less legacy ports are not hardware")
    func hardwareFilter() {
        #expect(!DiscoveredDevice.isHardware(sysPath: "/sys/devices/virtual/tty/tty0", subsystem: "tty", uartType: nil))
        #expect(!DiscoveredDevice.isHardware(sysPath: "/sys/devices/virtual/tty/ptmx", subsystem: "tty", uartType: nil))
        #expect(!DiscoveredDevice.isHardware(sysPath: "/sys/devices/platform/serial8250/tty/ttyS3", subsystem: "tty", uartType: "0\n"))
        #expect(DiscoveredDevice.isHardware(sysPath: "/sys/devices/pnp0/00:00/tty/ttyS0", subsystem: "tty", uartType: "4"))
        #expect(DiscoveredDevice.isHardware(sysPath: "/sys/devices/pci0000:00/…/ttyUSB0/tty/ttyUSB0", subsystem: "tty", uartType: nil))
    }

    @Test("an inventory applies hot-plug events idempotently")
    func inventory() {
        let pump = DiscoveredDevice(subsystem: "tty", node: "/dev/ttyUSB0", sysPath: "/sys/a", properties: Self.configuredFTDI)
        let other = DiscoveredDevice(subsystem: "tty", node: "/dev/ttyUSB1", sysPath: "/sys/b", properties: [:])
        var inventory = DeviceInventory([pump])
        #expect(inventory.apply(.added(pump)) == nil)  // already in the initial enumeration
        #expect(inventory.apply(.added(other)) == .added(other))
        #expect(inventory.apply(.added(other)) == nil)
        #expect(inventory.apply(.changed(other)) == nil)
        let reconfigured = DiscoveredDevice(
            subsystem: "tty", node: "/dev/ttyUSB1", sysPath: "/sys/b", properties: ["INFUSION_PROTOCOL": "masimo"])
        #expect(inventory.apply(.changed(reconfigured)) == .changed(reconfigured))
        #expect(inventory.apply(.removed(other)) == .removed(reconfigured))
        #expect(inventory.apply(.removed(other)) == nil)  // left without being there
        #expect(inventory.devices.keys.sorted() == ["/sys/a"])
        #expect(DeviceEvent.from(action: "bind", device: pump) == nil)
        #expect(DeviceEvent.from(action: "add", device: pump) == .added(pump))
        #expect(DeviceEvent.from(action: "remove", device: pump) == .removed(pump))
        #expect(DeviceEvent.from(action: "change", device: pump) == .changed(pump))
    }

    @Test("scanning this machine works and returns only hardware tty and hidraw nodes")
    func scanHere() throws {
        let devices = try DeviceDiscovery.scan()
        for device in devices {
            #expect(["tty", "hidraw"].contains(device.subsystem))
            #expect(!device.sysPath.contains("/devices/virtual/"))
        }
        // Pseudo-terminals are virtual: one created now does not show up.
        let pty = try PseudoTerminal(holdSlaveOpen: true)
        defer { pty.close() }
        #expect(try DeviceDiscovery.scan().allSatisfy { $0.node != pty.slavePath })
    }

    @Test("the hot-plug monitor opens first, enumerates, starts and stops cleanly")
    func monitorLifecycle() throws {
        let opened = Result { () throws(DeviceIOError) in try DeviceMonitor() }
        if case .failure(.udevUnavailable) = opened { return }  // no netlink here: a clear error is the graceful outcome
        let monitor = try opened.get()
        let snapshot = monitor.snapshot()
        #expect(snapshot == (try DeviceDiscovery.scan()))
        let events = Mutex<[DeviceEvent]>([])
        try monitor.start { event in events.withLock { $0.append(event) } }
        #expect(throws: DeviceIOError.alreadyStarted(path: "udev monitor")) { try monitor.start { _ in } }
        let (_, elapsed) = measure { monitor.close() }
        #expect(elapsed < .milliseconds(200))
        monitor.close()
        #expect(throws: DeviceIOError.closed(path: "udev monitor")) { try monitor.start { _ in } }
    }

    @Test("access checks say allowed, missing or denied")
    func accessCheck() {
        #expect(DeviceAccess.check("/dev/null") == .allowed)
        #expect(DeviceAccess.check("/dev/infusion-test-missing") == .missing)
        #expect(DeviceAccess.permissionDenied.description.contains("udev/README.md"))
    }
}

@Suite("libusb")
struct USBTests {
    static func info(bus: UInt8, address: UInt8, vendor: UInt16 = 0x0403, product: UInt16 = 0x6001) -> USBDeviceInfo {
        USBDeviceInfo(key: USBDeviceKey(bus: bus, address: address), vendorID: vendor, productID: product)
    }

    @Test("initialising and listing work without a USB bus, and list only real devices")
    func listHere() throws {
        let context = try USBContext()
        let devices = try context.devices()
        // This machine may have no USB bus at all; whatever is listed must be coherent.
        for device in devices {
            #expect(device.key.bus > 0)
            #expect(device.usbID.count == 9)
        }
    }

    @Test("the hot-plug tracker drops duplicate arrivals and departures of unknown devices")
    func trackerStateMachine() {
        var tracker = USBHotplugTracker()
        let ftdi = Self.info(bus: 1, address: 4)
        let ch340 = Self.info(bus: 1, address: 5, vendor: 0x1A86, product: 0x7523)
        #expect(tracker.apply(.left(ch340)) == nil)  // LEFT without ARRIVED
        #expect(tracker.apply(.arrived(ftdi)) == .arrived(ftdi))
        #expect(tracker.apply(.arrived(ftdi)) == nil)  // ENUMERATE + event loop: twice
        #expect(tracker.apply(.arrived(ch340)) == .arrived(ch340))
        #expect(tracker.present.count == 2)
        #expect(tracker.apply(.left(ftdi)) == .left(ftdi))
        #expect(tracker.apply(.left(ftdi)) == nil)
        // Re-plugged: a new address is a new device.
        let replugged = Self.info(bus: 1, address: 6)
        #expect(tracker.apply(.arrived(replugged)) == .arrived(replugged))
        #expect(Set(tracker.present.keys) == [ch340.key, replugged.key])
        #expect(ftdi.knownAdapter?.name.hasPrefix("FTDI") == true)
        #expect(ch340.usbID == "1a86:7523")
    }

    @Test("the hot-plug monitor registers, runs its event thread and tears down promptly")
    func hotplugLifecycle() throws {
        let context = try USBContext()
        guard USBContext.supportsHotplug else {
            #expect(throws: DeviceIOError.usbHotplugUnsupported) { try USBHotplugMonitor(context: context) { _ in } }
            return
        }
        let seen = Mutex<[USBHotplugEvent]>([])
        let monitor = try USBHotplugMonitor(context: context) { event in seen.withLock { $0.append(event) } }
        // With ENUMERATE, the devices present have arrived by now, each once.
        let arrived = seen.withLock { $0 }.map(\.device.key)
        #expect(Set(arrived).count == arrived.count)
        #expect(arrived.count == (try context.devices(readStrings: false)).count)
        let (_, elapsed) = measure { monitor.close() }
        #expect(elapsed < .milliseconds(500))
        monitor.close()
    }
}
