import DeviceSimulators
import InfusionCore
import Supervisor

/// Something that happens to a virtual session at a scripted time: an operator action, a device fault,
/// a cable pulled, or the controller going silent.
public enum VirtualSessionAction: Hashable, Sendable, CustomStringConvertible {
    /// An operator action, submitted to the supervisor and applied at its next step (start, pause,
    /// resume, stop, acknowledge, audio pause, titrate). The outcome is in `VirtualSessionSummary.actions`.
    case operatorAction(OperatorAction)
    /// A fault injected into the simulated pump by name, as `infusion-sim` takes it ("occlusion",
    /// "silence 10s", "power-reset"; see `NewEraSimulatedPump.faultHelp`).
    case pumpFault(FaultCommand)
    /// A fault injected into the simulated oximeter ("probe-off 30s", "silence 5s"; see
    /// `OximeterFaults.help`). Probe-off can also come from the patient scenario (`probe_off` event).
    case oximeterFault(FaultCommand)
    /// The pump's cable is pulled: both ends see the link go down; bytes in flight are lost.
    case unplugPump
    /// The pump's cable is plugged back in (the driver handshakes and re-arms safe mode).
    case replugPump
    /// The oximeter's cable is pulled.
    case unplugOximeter
    /// The oximeter's cable is plugged back in.
    case replugOximeter
    /// The controller dies (`kill -9`): the supervisor stops stepping and the drivers' ports are closed,
    /// so nothing more is sent to the pump. Only the pump's own watchdog can stop it now.
    case controllerSilent

    /// One line for logs and messages ("operator start", "pump fault occlusion").
    public var description: String {
        switch self {
        case .operatorAction(let action): "operator \(action)"
        case .pumpFault(let fault): "pump fault \(([fault.name] + fault.arguments).joined(separator: " "))"
        case .oximeterFault(let fault): "oximeter fault \(([fault.name] + fault.arguments).joined(separator: " "))"
        case .unplugPump: "pump unplugged"
        case .replugPump: "pump plugged back in"
        case .unplugOximeter: "oximeter unplugged"
        case .replugOximeter: "oximeter plugged back in"
        case .controllerSilent: "controller silent"
        }
    }
}

/// One scripted action and when it happens, as time since the session started.
public struct VirtualSessionStep: Hashable, Sendable {
    /// Time since the session started (the patient scenario's time axis too).
    public var at: Duration
    /// What happens.
    public var action: VirtualSessionAction

    /// A step; see each property.
    public init(at: Duration, _ action: VirtualSessionAction) {
        self.at = at
        self.action = action
    }
}

/// The operator's and the devices' script for a virtual session: actions at given times. Steps at the
/// same time run in the order given. A plain value; any thread.
public struct VirtualSessionScript: Hashable, Sendable {
    /// The steps, sorted by time (stable for equal times).
    public private(set) var steps: [VirtualSessionStep]

    /// A script from `steps` (sorted by time; equal times keep their order).
    public init(_ steps: [VirtualSessionStep] = []) {
        self.steps = steps.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }

    /// The same script with `action` added at `at`.
    public func adding(_ action: VirtualSessionAction, at: Duration) -> VirtualSessionScript {
        VirtualSessionScript(steps + [VirtualSessionStep(at: at, action)])
    }

    /// The usual opening: the operator presses start at `at` (by then the devices have connected, the
    /// pump's watchdog is armed and fresh vital signs are in).
    public static func start(at: Duration = .seconds(5)) -> VirtualSessionScript {
        VirtualSessionScript([VirtualSessionStep(at: at, .operatorAction(.start))])
    }
}
