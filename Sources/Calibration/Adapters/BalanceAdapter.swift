import DeviceProtocols
import Drivers
import InfusionCore

extension BalanceReading {
    /// Maps how an MT-SICS weighing exchange ended onto a reading: a reply through `init(mtsics:)`
    /// (weights, `S I`, `S +`, `S -`, `ES`/`ET`/`EL`), no reply to `.noReply`, and a link failure to
    /// `.communication` with the driver's message naming `device`.
    public init(mtsicsOutcome outcome: MTSICSOutcome, device: String, command: MTSICSCommand) {
        switch outcome {
        case let .response(response):
            self.init(mtsics: response)
        case .noReply:
            self = .problem(.noReply)
        case .notConnected, .linkLost, .queueFull:
            let kind = MTSICSBalanceError.Kind(outcome: outcome) ?? .linkLost
            self = .problem(.communication(MTSICSBalanceError(device: device, command: command, kind: kind).description))
        }
    }
}

extension WeighingMode {
    /// The MT-SICS command for this mode: `SI` (immediate) or `S` (stable).
    public var mtsicsCommand: MTSICSCommand { self == .immediate ? .weighImmediately : .weighStable }
}

/// The MT-SICS balance driver as the calibration runner's balance. `zero()` is `Z` (throws the driver's
/// typed error, whose description tells the operator what to do); `weigh` is `SI` or `S`, never throws,
/// and returns within the driver's reply deadlines.
extension MTSICSBalance: CalibrationBalance {
    /// One weighing with `SI` or `S`, mapped by `BalanceReading(mtsicsOutcome:device:command:)`.
    public func weigh(_ mode: WeighingMode) async -> BalanceReading {
        let command = mode.mtsicsCommand
        return BalanceReading(mtsicsOutcome: await exchange(command), device: name, command: command)
    }
}
