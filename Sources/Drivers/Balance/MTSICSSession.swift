import DeviceIO
import DeviceProtocols
import InfusionCore

/// How an MT-SICS exchange ended, as the session saw it. A reply that is an error (`ES`, `S I`, `Z +`…)
/// is still a `.response`: the balance answered; `MTSICSBalanceError.Kind(response:)` types it.
///
/// Pure value; any thread.
public enum MTSICSOutcome: Hashable, Sendable {
    /// The balance answered this command (any reply that belongs to it, error replies included).
    case response(MTSICSResponse)
    /// Sent, but no reply that belongs to the command arrived within `after`.
    case noReply(after: Duration)
    /// The command could not be sent: the link was down for longer than the queue time-out.
    case notConnected(waited: Duration)
    /// The link went down while the command was queued or waiting for its reply.
    case linkLost
    /// The queue was full (more than `MTSICSSession.Configuration.queueLimit` requests waiting).
    case queueFull
}

/// What the MT-SICS session endpoint publishes.
public enum MTSICSSessionOutput: Hashable, Sendable {
    /// Request `id` (given to `submit`) for `command` is finished.
    case completed(id: UInt64, command: MTSICSCommand, MTSICSOutcome)
    /// The link's state changed.
    case connection(DeviceConnection, at: MonotonicInstant)
    /// A line arrived that is not a reply to the command waiting (unparseable, unsolicited or late); it
    /// was ignored. For logs.
    case ignoredLine(String, at: MonotonicInstant)
}

/// The pure session rules of an MT-SICS balance driver (reference/protocols.md §A7), as a
/// `LinkEndpoint`: a FIFO of requests with one outstanding (MT-SICS is half-duplex command/reply),
/// line splitting with a bounded buffer, reply matching by command, reply deadlines (longer for `S` and
/// `Z`, which wait for a stable reading), one bounded retry of a read after `ET`, and connection state.
///
/// Reply matching: a reply belongs to the outstanding command when its identifier does (`S …` to `S` and
/// `SI`; `Z …` to `Z`; `ZI …` to `ZI`; `I4 A` to `I4` and `@`; `In …` to `In`); `ES`, `ET` and `EL` belong to
/// any command. Anything else, and every line when nothing is outstanding, is ignored and reported as
/// `ignoredLine`. Limitation (of the protocol): a late reply of the same kind to a command that already
/// timed out cannot be told from the reply to the next one; the deadlines are chosen longer than the
/// balance's own time-outs to make that unlikely.
///
/// No clocks and no I/O: the host (`EndpointHost` or `VirtualNetwork`) supplies time and carries out the
/// effects. Not for concurrent use; hosts serialise calls.
public struct MTSICSSession: LinkEndpoint {
    /// Outputs: completions, connection changes, ignored lines.
    public typealias Output = MTSICSSessionOutput

    /// Reply deadlines and bounds.
    public struct Configuration: Hashable, Sendable {
        /// Deadline for commands answered at once (`I1`–`I5`, `SI`, `ZI`, `@`). Default 1 s.
        public var replyTimeout: Duration
        /// Deadline for `S` and `Z`, which wait for a stable reading (the balance answers `S I`/`Z I` at its
        /// own time-out). Must exceed the balance's stability time-out. Default 15 s.
        public var stableReplyTimeout: Duration
        /// How long a request may wait for the link to come up before it fails `notConnected`. Default 2 s.
        public var queueTimeout: Duration
        /// At most this many requests waiting (beyond it `queueFull`). Default 32.
        public var queueLimit: Int
        /// Retries of a read command (`I1`–`I5`, `S`, `SI`) answered `ET`. Default 1.
        public var transmissionRetries: Int

        /// A configuration; see each property.
        public init(replyTimeout: Duration = .seconds(1), stableReplyTimeout: Duration = .seconds(15),
                    queueTimeout: Duration = .seconds(2), queueLimit: Int = 32, transmissionRetries: Int = 1) {
            self.replyTimeout = replyTimeout
            self.stableReplyTimeout = stableReplyTimeout
            self.queueTimeout = queueTimeout
            self.queueLimit = max(1, queueLimit)
            self.transmissionRetries = max(0, transmissionRetries)
        }

        /// The reply deadline for `command`.
        public func timeout(for command: MTSICSCommand) -> Duration {
            switch command {
            case .weighStable, .zero: stableReplyTimeout
            default: replyTimeout
            }
        }
    }

    private struct Request: Hashable, Sendable {
        var id: UInt64
        var command: MTSICSCommand
        var submittedAt: MonotonicInstant
        var retriesLeft: Int
    }

    private struct Outstanding: Hashable, Sendable {
        var request: Request
        var sentAt: MonotonicInstant
        var deadline: MonotonicInstant
    }

    /// The configuration in force.
    public let configuration: Configuration
    /// The link's state as last reported.
    public private(set) var connection: DeviceConnection = .disconnected
    /// Requests waiting to be sent (not counting the outstanding one).
    public var queuedCount: Int { queue.count }
    /// True while a command waits for its reply.
    public var isAwaitingReply: Bool { outstanding != nil }

    private var queue: [Request] = []
    private var outstanding: Outstanding?
    private var splitter = MTSICSLineSplitter()
    private var linkIsUp = false

    /// A session with `configuration`; the link starts down.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Queues `command` as request `id` (ids are the caller's; use each once). It is sent at once when the
    /// link is up and nothing is outstanding; its completion is emitted as `.completed(id:…)` exactly once.
    public mutating func submit(_ command: MTSICSCommand, id: UInt64, at now: MonotonicInstant,
                                effects: inout EndpointEffects<Output>) {
        guard queue.count < configuration.queueLimit else {
            effects.emit(.completed(id: id, command: command, .queueFull))
            return
        }
        let retries = Self.isRead(command) ? configuration.transmissionRetries : 0
        queue.append(Request(id: id, command: command, submittedAt: now, retriesLeft: retries))
        sendNext(at: now, effects: &effects)
    }

    /// The earliest reply deadline or queue time-out.
    public var nextDeadline: MonotonicInstant? {
        var next = outstanding?.deadline
        if !linkIsUp, let first = queue.first {
            let expiry = first.submittedAt + configuration.queueTimeout
            next = next.map { min($0, expiry) } ?? expiry
        }
        return next
    }

    /// The link came up: sends the first queued request.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        linkIsUp = true
        splitter.reset()
        setConnection(.connected, at: now, effects: &effects)
        sendNext(at: now, effects: &effects)
    }

    /// The link went down: the outstanding request and every queued one fail with `linkLost`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        linkIsUp = false
        splitter.reset()
        setConnection(.disconnected, at: now, effects: &effects)
        if let outstanding {
            effects.emit(.completed(id: outstanding.request.id, command: outstanding.request.command, .linkLost))
        }
        outstanding = nil
        for request in queue { effects.emit(.completed(id: request.id, command: request.command, .linkLost)) }
        queue.removeAll()
    }

    /// Bytes from the balance: splits lines and matches replies.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        var lines: [MTSICSLineEvent] = []
        splitter.feed(bytes) { lines.append($0) }
        for event in lines {
            switch event {
            case let .line(text): handle(line: text, at: now, effects: &effects)
            case let .lineTooLong(limit): effects.emit(.ignoredLine("<line longer than \(limit) bytes>", at: now))
            }
        }
    }

    /// Deadlines: a reply not received in time completes `noReply` (the balance is then reported
    /// `silent`); a request that waited too long for the link completes `notConnected`.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        if let current = outstanding, now >= current.deadline {
            outstanding = nil
            setConnection(.silent, at: now, effects: &effects)  // first, so a caller resumed by the completion sees it
            effects.emit(.completed(id: current.request.id, command: current.request.command, .noReply(after: now - current.sentAt)))
            sendNext(at: now, effects: &effects)
        }
        if !linkIsUp {
            while let first = queue.first, now >= first.submittedAt + configuration.queueTimeout {
                queue.removeFirst()
                effects.emit(.completed(id: first.id, command: first.command, .notConnected(waited: now - first.submittedAt)))
            }
        }
    }

    // MARK: Internals

    private static func isRead(_ command: MTSICSCommand) -> Bool {
        switch command {
        case .level, .balanceData, .softwareVersion, .serialNumber, .softwareIdentification, .weighStable, .weighImmediately: true
        case .zero, .zeroImmediately, .reset: false
        }
    }

    /// Whether `response` answers `command`.
    static func belongs(_ response: MTSICSResponse, to command: MTSICSCommand) -> Bool {
        switch response {
        case .syntaxError, .transmissionError, .logicalError: return true
        case .weight, .weightNotExecutable, .weightOverload, .weightUnderload:
            return command == .weighStable || command == .weighImmediately
        case let .zero(immediate, _):
            return command == (immediate ? .zeroImmediately : .zero)
        case .serialNumber:
            return command == .serialNumber || command == .reset
        case let .information(which, _), let .informationNotExecutable(which):
            return which == command
        }
    }

    private mutating func handle(line: String, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard let current = outstanding, let response = try? MTSICSResponse(line: line),
              Self.belongs(response, to: current.request.command) else {
            effects.emit(.ignoredLine(line, at: now))
            return
        }
        outstanding = nil
        setConnection(.connected, at: now, effects: &effects)
        if response == .transmissionError, current.request.retriesLeft > 0 {
            var retry = current.request
            retry.retriesLeft -= 1
            queue.insert(retry, at: 0)
        } else {
            effects.emit(.completed(id: current.request.id, command: current.request.command, .response(response)))
        }
        sendNext(at: now, effects: &effects)
    }

    private mutating func sendNext(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard linkIsUp, outstanding == nil, !queue.isEmpty else { return }
        let request = queue.removeFirst()
        outstanding = Outstanding(request: request, sentAt: now, deadline: now + configuration.timeout(for: request.command))
        effects.send(request.command.bytes)
    }

    private mutating func setConnection(_ state: DeviceConnection, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard state != connection else { return }
        connection = state
        effects.emit(.connection(state, at: now))
    }
}
