import DeviceIO
import DeviceProtocols
import Foundation
import InfusionCore
import Logging
import Synchronization

/// What an MT-SICS balance says it is (`I1`–`I5`).
public struct MTSICSBalanceIdentity: Hashable, Sendable, Codable {
    /// `I4`: the serial number (the key calibration records name the balance by).
    public var serialNumber: String
    /// `I2`: the model ("XS204").
    public var model: String
    /// `I2`: the capacity as the balance writes it ("220.0000 g"), if given.
    public var capacity: String?
    /// `I1`: MT-SICS level and level versions, if answered.
    public var level: [String]?
    /// `I3`: software version, if answered.
    public var softwareVersion: String?
    /// `I5`: software identification, if answered.
    public var softwareIdentification: String?

    /// An identity; see each property.
    public init(serialNumber: String, model: String, capacity: String? = nil, level: [String]? = nil,
                softwareVersion: String? = nil, softwareIdentification: String? = nil) {
        self.serialNumber = serialNumber
        self.model = model
        self.capacity = capacity
        self.level = level
        self.softwareVersion = softwareVersion
        self.softwareIdentification = softwareIdentification
    }
}

/// A Mettler Toledo balance over MT-SICS level 0 (reference/protocols.md §A7): identity, stable and
/// immediate weight, zero, reset. A thin class over an `EndpointHost` running `MTSICSSession`: each call
/// submits one command and resumes when the session completes it (reply, deadline, or link loss), so every
/// call returns within the session's deadlines. The host reopens the port every `reconnectInterval` after
/// it is unplugged; calls made while it is away wait up to the queue time-out, then fail `notConnected`.
///
/// Threads: every method may be called from any task or thread; calls are queued and answered in order.
/// Ownership: the balance owns its port (through the host) and closes it on `close()`.
public final class MTSICSBalance: Sendable {
    /// A name for logs and messages: the port path.
    public let name: String
    private let host: any EndpointRunner<MTSICSSession>
    private let router: Router

    /// Opens the balance on the serial port at `path` (default 9600 8N1) and keeps it open, reconnecting
    /// every `reconnectInterval` when it goes away. Returns at once; the port opens on the host's thread.
    public convenience init(path: String, settings: SerialSettings = .mtSics9600,
                            configuration: MTSICSSession.Configuration = .init(),
                            clock: any MonotonicClock = SystemMonotonicClock(),
                            reconnectInterval: Duration = .milliseconds(500)) {
        self.init(name: path, configuration: configuration, clock: clock, reconnectInterval: reconnectInterval) {
            () throws(DeviceIOError) -> any ByteLink in
            DescriptorLink(port: try SerialPort(path: path, settings: settings), clock: clock)
        }
    }

    /// A balance on whatever link `open` returns (a serial port, a pty for tests); see the other initialiser.
    public convenience init(name: String, configuration: MTSICSSession.Configuration = .init(),
                            clock: any MonotonicClock = SystemMonotonicClock(),
                            reconnectInterval: Duration = .milliseconds(500),
                            open: @escaping EndpointHost<MTSICSSession>.Opener) {
        self.init(name: name, configuration: configuration) { session, onOutput in
            let host = EndpointHost(endpoint: session, name: name, clock: clock, reconnectInterval: reconnectInterval,
                                    open: open, onOutput: onOutput)
            host.start()
            return host
        }
    }

    /// A balance whose session is run by the runner `makeRunner` returns (given the session and the
    /// output handler it must call with every output, in order).
    public init(name: String, configuration: MTSICSSession.Configuration = .init(),
                makeRunner: (MTSICSSession, @escaping @Sendable (MTSICSSession.Output) -> Void) -> any EndpointRunner<MTSICSSession>) {
        let router = Router(name: name)
        self.name = name
        self.router = router
        self.host = makeRunner(MTSICSSession(configuration: configuration), { router.handle($0) })
    }

    /// A balance whose session runs in a `VirtualNetwork` (virtual time); connect `runner.node` to a
    /// simulated balance. Each call runs the network until the session has answered it; call from one
    /// task at a time.
    public static func virtual(name: String, configuration: MTSICSSession.Configuration = .init(), network: VirtualNetwork)
        -> (balance: MTSICSBalance, runner: VirtualEndpointRunner<MTSICSSession>) {
        var made: VirtualEndpointRunner<MTSICSSession>?
        let balance = MTSICSBalance(name: name, configuration: configuration) { session, onOutput in
            let runner = VirtualEndpointRunner(network: network, endpoint: session, onOutput: onOutput) {
                $0.queuedCount == 0 && !$0.isAwaitingReply
            }
            made = runner
            return runner
        }
        // `makeRunner` runs synchronously inside `init`, so `made` is set here.
        return (balance, made ?? VirtualEndpointRunner(network: network, endpoint: MTSICSSession(), onOutput: { _ in }) { _ in true })
    }

    deinit { close() }

    /// The link's state as last reported (connected, silent after a missed reply, disconnected).
    public var connection: DeviceConnection { router.connection }

    /// Sends one command and returns how the exchange ended; never throws. The typed methods below are
    /// built on it.
    public func exchange(_ command: MTSICSCommand) async -> MTSICSOutcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<MTSICSOutcome, Never>) in
            guard let id = router.register(continuation) else {
                continuation.resume(returning: .linkLost)
                return
            }
            host.perform { session, now, effects in session.submit(command, id: id, at: now, effects: &effects) }
        }
    }

    /// Reads the identity: `I2` (model, capacity) and `I4` (serial) are required; `I1`, `I3` and `I5` are
    /// recorded when the balance answers them.
    public func identify() async throws(MTSICSBalanceError) -> MTSICSBalanceIdentity {
        let serial = try await serialNumber()
        let data = try await information(.balanceData)
        guard let model = data.first, !model.isEmpty else {
            throw MTSICSBalanceError(device: name, command: .balanceData, kind: .unexpectedReply("I2 A without a model"))
        }
        let level = try? await information(.level)
        let software = try? await information(.softwareVersion)
        let softwareID = try? await information(.softwareIdentification)
        return MTSICSBalanceIdentity(serialNumber: serial, model: model, capacity: data.count > 1 ? data[1] : nil,
                                     level: level, softwareVersion: software?.first, softwareIdentification: softwareID?.first)
    }

    /// `I4`: the serial number.
    public func serialNumber() async throws(MTSICSBalanceError) -> String {
        let response = try await checked(.serialNumber)
        guard case let .serialNumber(serial) = response else { throw unexpected(.serialNumber, response) }
        return serial
    }

    /// `I1`, `I2`, `I3` or `I5`: the quoted values of the reply.
    public func information(_ command: MTSICSCommand) async throws(MTSICSBalanceError) -> [String] {
        let response = try await checked(command)
        guard case let .information(which, values) = response, which == command else { throw unexpected(command, response) }
        return values
    }

    /// `S`: the next stable weight. Throws `notExecutable` (`S I`) when the balance does not settle before
    /// its own time-out, `overload`/`underload` for `S +`/`S -`.
    public func weighStable() async throws(MTSICSBalanceError) -> MTSICSWeight {
        try await weight(.weighStable)
    }

    /// `SI`: the weight now, stable or dynamic.
    public func weighImmediately() async throws(MTSICSBalanceError) -> MTSICSWeight {
        try await weight(.weighImmediately)
    }

    /// `Z`: zeroes when stable. Throws `notExecutable` (`Z I`), `zeroAboveRange`/`zeroBelowRange`.
    public func zero() async throws(MTSICSBalanceError) {
        let response = try await checked(.zero)
        guard case .zero(false, .done) = response else { throw unexpected(.zero, response) }
    }

    /// `ZI`: zeroes now; reports whether the reading was stable or dynamic at that moment.
    public func zeroImmediately() async throws(MTSICSBalanceError) -> MTSICSZeroOutcome {
        let response = try await checked(.zeroImmediately)
        guard case let .zero(true, outcome) = response else { throw unexpected(.zeroImmediately, response) }
        return outcome
    }

    /// `@`: resets the balance (cancels its pending commands); returns the serial number it answers with.
    public func reset() async throws(MTSICSBalanceError) -> String {
        let response = try await checked(.reset)
        guard case let .serialNumber(serial) = response else { throw unexpected(.reset, response) }
        return serial
    }

    /// Stops the host and closes the port; calls still waiting complete with `linkLost`. Idempotent; do not
    /// call it from inside a completion.
    public func close() {
        guard router.close() else { return }
        host.stop()
        router.failAll()
    }

    // MARK: Internals

    private func weight(_ command: MTSICSCommand) async throws(MTSICSBalanceError) -> MTSICSWeight {
        let response = try await checked(command)
        guard case let .weight(weight) = response else { throw unexpected(command, response) }
        return weight
    }

    /// The response when it is not an error reply; otherwise the typed error.
    private func checked(_ command: MTSICSCommand) async throws(MTSICSBalanceError) -> MTSICSResponse {
        let outcome = await exchange(command)
        if let kind = MTSICSBalanceError.Kind(outcome: outcome) {
            throw MTSICSBalanceError(device: name, command: command, kind: kind)
        }
        guard case let .response(response) = outcome else {
            throw MTSICSBalanceError(device: name, command: command, kind: .linkLost)
        }
        return response
    }

    private func unexpected(_ command: MTSICSCommand, _ response: MTSICSResponse) -> MTSICSBalanceError {
        MTSICSBalanceError(device: name, command: command, kind: .unexpectedReply(response.line))
    }

    /// Pairs completions with waiting callers; thread-safe.
    private final class Router: Sendable {
        struct State {
            var waiting: [UInt64: CheckedContinuation<MTSICSOutcome, Never>] = [:]
            var nextID: UInt64 = 1
            var connection: DeviceConnection = .disconnected
            var closed = false
        }

        let state = Mutex(State())
        let logger: Logger

        init(name: String) {
            var logger = Logger(label: "infusion.balance.mtsics")
            logger[metadataKey: "balance"] = "\(name)"
            self.logger = logger
        }

        var connection: DeviceConnection { state.withLock { $0.connection } }

        func register(_ continuation: CheckedContinuation<MTSICSOutcome, Never>) -> UInt64? {
            state.withLock { state in
                guard !state.closed else { return nil }
                let id = state.nextID
                state.nextID += 1
                state.waiting[id] = continuation
                return id
            }
        }

        /// Marks closed; false when it already was.
        func close() -> Bool {
            state.withLock { state in
                defer { state.closed = true }
                return !state.closed
            }
        }

        func failAll() {
            let waiting = state.withLock { state in
                defer { state.waiting.removeAll() }
                return Array(state.waiting.values)
            }
            for continuation in waiting { continuation.resume(returning: .linkLost) }
        }

        func handle(_ output: MTSICSSessionOutput) {
            switch output {
            case let .completed(id, _, outcome):
                let continuation = state.withLock { $0.waiting.removeValue(forKey: id) }
                continuation?.resume(returning: outcome)
            case let .connection(connection, _):
                state.withLock { $0.connection = connection }
                logger.info("balance link \(connection)")
            case let .ignoredLine(line, _):
                logger.debug("ignored line from the balance", metadata: ["line": "\(line)"])
            }
        }
    }
}
