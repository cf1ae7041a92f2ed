import ArgumentParser
import DeviceIO
import Foundation
import Synchronization

/// `infusionctl devices [--json] [--watch] [--all]`: lists the serial and HID devices this machine
/// has, what udev says they are (role, protocol), their node and stable link, USB identity, and
/// whether this user may open them; `--watch` then prints add and remove events until interrupted.
struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List pumps, oximeters and serial adapters: role, protocol, node, stable link, USB identity, access.",
        discussion: """
            Devices are classified from their udev properties (INFUSION_ROLE, INFUSION_PROTOCOL, INFUSION_BAUD,
            INFUSION_ADDRESS, set by udev/70-infusion-devices.rules); a known USB-serial adapter without them is
            listed as "serial adapter, not configured". A permission problem points to udev/README.md.
            With --json the output is one JSON array ([] when there is nothing); with --watch, one JSON object
            per event follows it, one per line.
            """
    )

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "After the list, print add and remove events until interrupted (Ctrl-C).")
    var watch = false

    @Flag(help: "Also list serial ports that are neither configured nor on USB (e.g. on-board ttyS ports).")
    var all = false

    func run() async throws {
        if watch {
            try await runWatch()
        } else {
            let devices: [DiscoveredDevice]
            do {
                devices = try DeviceDiscovery.scan()
            } catch {
                Output.error("\(error)")
                throw ExitCode.failure
            }
            printList(devices.filter { all || $0.isOfInterest })
        }
    }

    private func printList(_ devices: [DiscoveredDevice]) {
        if json {
            Output.line(Output.json(devices.map(DeviceRecord.init)))
            return
        }
        guard !devices.isEmpty else {
            Output.line(
                "No pumps, oximeters or serial adapters found. Plug a device in, and see udev/README.md to configure it.")
            return
        }
        for device in devices { Output.line(DevicesCommand.text(for: device)) }
        if devices.contains(where: { $0.node.map(DeviceAccess.check) == .permissionDenied }) {
            Output.line("Some devices cannot be opened by this user: see udev/README.md (group \"infusion\").")
        }
    }

    private func runWatch() async throws {
        // First: once the list is printed, SIGINT and SIGTERM must end the watch cleanly (exit 0).
        do throws(TerminationSignals.Unavailable) {
            try TerminationSignals.install()
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        let monitor: DeviceMonitor
        do {
            monitor = try DeviceMonitor()  // open the monitor first, then enumerate: nothing is missed
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        let initial = monitor.snapshot()
        printList(initial.filter { all || $0.isOfInterest })
        if !monitor.udevdRunning {
            Output.note("systemd-udevd is not running here, so no hot-plug events will arrive (Ctrl-C to stop)")
        } else if !json {
            Output.line("Watching for devices being added or removed (Ctrl-C to stop)…")
        }
        let inventory = Mutex(DeviceInventory(initial))
        let showAll = all
        let asJSON = json
        try monitor.start { event in
            guard let news = inventory.withLock({ $0.apply(event) }), showAll || news.device.isOfInterest else { return }
            if asJSON {
                Output.line(Output.json(EventRecord(news)))
            } else {
                Output.line(DevicesCommand.text(for: news))
            }
        }
        _ = await TerminationSignals.wait()
        monitor.close()
    }

    /// A device as text, one paragraph.
    static func text(for device: DiscoveredDevice) -> String {
        var lines: [String] = []
        var head = device.node ?? device.sysPath
        if let link = device.stableLink { head += " → \(link)" }
        lines.append(head)
        switch device.classification {
        case .configured(let configured):
            var line = "  role: \(configured.role)   protocol: \(configured.protocolName)"
            if let settings = configured.serialSettings { line += " (\(settings))" }
            if let address = configured.address { line += "   address: \(address)" }
            lines.append(line)
        case .misconfigured(let reason):
            lines.append("  MISCONFIGURED: \(reason)")
        case .serialAdapterNotConfigured(let adapter):
            lines.append("  serial adapter, not configured: \(adapter.name)" + (adapter.note.map { " (\($0))" } ?? ""))
        case .hidOximeterCandidate(let adapter):
            lines.append("  HID oximeter, not configured: \(adapter.name)")
        case .unrecognized:
            lines.append("  not recognised (\(device.subsystem))")
        }
        if let usb = device.usb {
            var line = "  usb: \(usb.usbID ?? "?")"
            if let serial = usb.serial { line += " serial \(serial)" }
            let names = [usb.vendorName, usb.productName].compactMap { $0 }
            if !names.isEmpty { line += ", \(names.joined(separator: " "))" }
            if let path = usb.portPath { line += ", port \(path)" }
            lines.append(line)
        }
        if let node = device.node { lines.append("  access: \(DeviceAccess.check(node))") }
        return lines.joined(separator: "\n")
    }

    /// An event as text.
    static func text(for event: DeviceEvent) -> String {
        let verb: String
        switch event {
        case .added: verb = "added"
        case .removed: verb = "removed"
        case .changed: verb = "changed"
        }
        if case .removed(let device) = event { return "\(verb): \(device.node ?? device.sysPath)" }
        return "\(verb): " + text(for: event.device)
    }
}

/// One device in `--json` output.
struct DeviceRecord: Encodable {
    let node: String?
    let subsystem: String
    let status: String
    let role: String?
    let `protocol`: String?
    let serialSettings: String?
    let address: Int?
    let problem: String?
    let adapter: String?
    let stableLink: String?
    let links: [String]
    let usb: USBIdentity?
    let access: String
    let accessHint: String?
    let sysPath: String

    init(_ device: DiscoveredDevice) {
        node = device.node
        subsystem = device.subsystem
        sysPath = device.sysPath
        stableLink = device.stableLink
        links = device.links
        usb = device.usb
        var role: String?
        var protocolName: String?
        var settings: String?
        var address: Int?
        var problem: String?
        var adapter: String?
        switch device.classification {
        case .configured(let configured):
            status = "configured"
            role = configured.role.rawValue
            protocolName = configured.protocolName.rawValue
            settings = configured.serialSettings?.description
            address = configured.address
        case .misconfigured(let reason):
            status = "misconfigured"
            problem = reason
        case .serialAdapterNotConfigured(let known):
            status = "serial-adapter-not-configured"
            adapter = known.name
        case .hidOximeterCandidate(let known):
            status = "hid-oximeter-candidate"
            adapter = known.name
        case .unrecognized:
            status = "unrecognized"
        }
        self.role = role
        self.protocol = protocolName
        serialSettings = settings
        self.address = address
        self.problem = problem
        self.adapter = adapter
        let check = device.node.map(DeviceAccess.check) ?? .missing
        switch check {
        case .allowed: access = "allowed"
        case .permissionDenied: access = "permission-denied"
        case .missing: access = "missing"
        case .failed: access = "unknown"
        }
        accessHint = check.isAllowed ? nil : check.description
    }
}

/// One `--watch` event in JSON output.
struct EventRecord: Encodable {
    let event: String
    let device: DeviceRecord

    init(_ event: DeviceEvent) {
        switch event {
        case .added: self.event = "added"
        case .removed: self.event = "removed"
        case .changed: self.event = "changed"
        }
        device = DeviceRecord(event.device)
    }
}
