import DeviceIO
import InfusionCore

/// Options for `makePump`.
public struct PumpFactoryOptions: Sendable {
    /// The name for logs and the operator ("pump0").
    public var name: String
    /// For a Fresenius rack: the module's slot (1...5). Ignored by other families.
    public var module: Int
    /// The clock the driver takes time from.
    public var clock: any MonotonicClock
    /// New Era only: the pump's address, baud rate and safe-mode watchdog time-out.
    public var newEra: NewEraSession.Configuration
    /// New Era only: the port's baud rate.
    public var baudRate: BaudRate

    /// Options; see each property.
    public init(name: String = "pump0", module: Int = 1, clock: any MonotonicClock = SystemMonotonicClock(),
                newEra: NewEraSession.Configuration = .init(), baudRate: BaudRate = .b19200) {
        self.name = name
        self.module = module
        self.clock = clock
        self.newEra = newEra
        self.baudRate = baudRate
    }
}

/// Why `makePump` could not make a driver; the message says what is accepted.
public struct PumpFactoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong and what to do.
    public let description: String
}

/// The protocol names `makePump` knows, for help texts.
public let pumpFactoryProtocols = ["newera", "alaris", "fresenius"]

/// Makes the driver for `protocol` ("alaris", "fresenius") on the serial device `device` (a path such
/// as `/dev/infusion/pump0` or a pty). The driver starts at once and reconnects while the device is
/// missing; the caller owns it and must `close()` it. For "fresenius" the pump is module
/// `options.module` of a rack driven through its own port (for several modules on one port use
/// `FreseniusRack`). Any thread.
public func makePump(protocol name: String, device: String, options: PumpFactoryOptions = PumpFactoryOptions()) throws(PumpFactoryError) -> any InfusionPump {
    switch name.lowercased() {
    case "newera":
        return NewEraPump(path: device, baudRate: options.baudRate, configuration: options.newEra, clock: options.clock)
    case "alaris":
        return AlarisPump(name: options.name, path: device, clock: options.clock)
    case "fresenius":
        guard (1...5).contains(options.module) else {
            throw PumpFactoryError(description: "Fresenius module \(options.module) does not exist: a Base A rack has slots 1 to 5")
        }
        let rack = FreseniusRack(name: options.name, path: device, configuration: FreseniusSessionConfiguration(modules: [options.module]),
                                 clock: options.clock)
        guard let pump = rack.pump(slot: options.module) else {
            throw PumpFactoryError(description: "Fresenius module \(options.module) could not be set up")
        }
        return pump
    default:
        throw PumpFactoryError(description: "unknown pump protocol \"\(name)\": use one of \(pumpFactoryProtocols.joined(separator: ", "))")
    }
}
