import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Synchronization

/// A New Era driver session and a simulated New Era pump on one wire, in virtual time.
final class NewEraBench {
    let clock = VirtualClock()
    let network: VirtualNetwork
    let driver: VirtualNetwork.NodeID
    let device: VirtualNetwork.NodeID
    private(set) var outputs: [NewEraSession.Output] = []
    private(set) var deviceEvents: [NewEraSimulatedPump.Event] = []
    private var nextID: NewEraSession.RequestID = 1

    init(session: NewEraSession.Configuration = .init(), pump: NewEraSimulatedPump.Configuration = .init(),
         bitsPerSecond: Int? = nil, connect: Bool = true) {
        network = VirtualNetwork(clock: clock)
        let box = Box()
        driver = network.add(NewEraSession(configuration: session)) { box.outputs.append($0) }
        device = network.add(NewEraSimulatedPump(configuration: pump)) { box.events.append($0) }
        self.box = box
        if connect { network.connect(driver, device, bitsPerSecond: bitsPerSecond) }
    }

    private final class Box {
        var outputs: [NewEraSession.Output] = []
        var events: [NewEraSimulatedPump.Event] = []
    }
    private let box: Box

    var allOutputs: [NewEraSession.Output] { box.outputs }
    var allDeviceEvents: [NewEraSimulatedPump.Event] { box.events }

    var session: NewEraSession { network.perform(driver, as: NewEraSession.self) { s, _, _ in s }! }
    var pump: NewEraSimulatedPump { network.perform(device, as: NewEraSimulatedPump.self) { p, _, _ in p }! }
    var now: MonotonicInstant { clock.now() }

    /// Runs until the handshake is done (or 5 s of virtual time pass).
    @discardableResult
    func waitReady() -> Bool {
        let end = now + .seconds(5)
        while !session.isReady, now < end { network.run(for: .milliseconds(5)) }
        return session.isReady
    }

    /// Submits `request` and runs virtual time until it completes (at most `limit`).
    func submit(_ request: NewEraSession.Request, limit: Duration = .seconds(10)) -> NewEraSession.Outcome? {
        let id = nextID
        nextID += 1
        network.perform(driver, as: NewEraSession.self) { s, now, fx in s.submit(request, id: id, now: now, effects: &fx) }
        let end = now + limit
        while now < end {
            if let outcome = completion(id) { return outcome }
            network.run(for: .milliseconds(5))
        }
        return completion(id)
    }

    func completion(_ id: NewEraSession.RequestID) -> NewEraSession.Outcome? {
        for output in box.outputs {
            if case let .completed(done, outcome) = output, done == id { return outcome }
        }
        return nil
    }

    func inject(_ name: String, _ arguments: [String] = []) -> String? {
        network.perform(device, as: NewEraSimulatedPump.self) { p, now, _ in
            try? p.inject(FaultCommand(name: name, arguments: arguments), at: now)
        } ?? nil
    }

    func run(for duration: Duration) { network.run(for: duration) }

    /// The latched alarms last published by the driver.
    var publishedAlarms: PumpAlarms {
        var last: PumpAlarms = []
        for output in box.outputs { if case let .alarms(alarms, _) = output { last = alarms } }
        return last
    }

    var connections: [DeviceConnection] {
        box.outputs.compactMap { if case let .connection(c, _) = $0 { c } else { nil } }
    }
}

extension NewEraSession.Outcome {
    var answer: NewEraSession.Answer? { if case let .confirmed(a) = self { a } else { nil } }
    var refusalCode: String? { if case let .refused(code, _) = self { code } else { nil } }
    var isUncertain: Bool { if case .uncertain = self { true } else { false } }
    var status: PumpStatus? { if case let .confirmed(.status(s)) = self { s } else { nil } }
}

/// A value shared between threads in tests.
final class Shared<T: Sendable>: Sendable {
    private let value: Mutex<T>
    init(_ initial: T) { value = Mutex(initial) }
    var get: T { value.withLock { $0 } }
    func update(_ body: (inout T) -> Void) { value.withLock { body(&$0) } }
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes.
/// Waits for something that must eventually happen (generous for a loaded CI machine; timing limits are asserted separately).
func eventually(_ timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let clock = SystemMonotonicClock()
    let end = clock.now() + timeout
    while clock.now() < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return await condition()
}

/// A simulated New Era pump behind a real pseudo-terminal, reachable through a symlink that survives
/// "replugging" (a new pty), as `infusion-sim --link` does.
final class PtyPump: Sendable {
    let linkPath: String
    let directory: URL
    private let hostBox = Mutex<EndpointHost<NewEraSimulatedPump>?>(nil)
    let events = Shared<[NewEraSimulatedPump.Event]>([])
    /// The same events, each with the time (host clock) at which the host delivered it.
    let timedEvents = Shared<[(event: NewEraSimulatedPump.Event, at: MonotonicInstant)]>([])
    let configuration: NewEraSimulatedPump.Configuration

    init(_ configuration: NewEraSimulatedPump.Configuration = .init()) throws {
        self.configuration = configuration
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("newera-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        linkPath = directory.appendingPathComponent("pump0").path
        try plugIn()
    }

    /// Creates a new pty, points the symlink at it and starts the simulated pump on it.
    func plugIn(state: NewEraSimulatedPump? = nil) throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        try? FileManager.default.removeItem(atPath: linkPath)
        try FileManager.default.createSymbolicLink(atPath: linkPath, withDestinationPath: pty.slavePath)
        let events = self.events, timedEvents = self.timedEvents
        let host = EndpointHost(endpoint: state ?? NewEraSimulatedPump(configuration: configuration), name: "sim", clock: clock,
                                linkUpOnOpen: false,
                                open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                                onOutput: { event in
                                    events.update { $0.append(event) }
                                    timedEvents.update { $0.append((event, clock.now())) }
                                })
        host.start()
        hostBox.withLock { $0 = host }
    }

    /// Removes the symlink, as udev does when an adapter is pulled, then closes the pty master (the
    /// driver's port hangs up); returns the pump's state for `plugIn(state:)`. Without the removal a
    /// reconnecting driver could open the dead pty's number after another test's pty reused it.
    @discardableResult
    func unplug() -> NewEraSimulatedPump? {
        try? FileManager.default.removeItem(atPath: linkPath)
        let host = hostBox.withLock { box in defer { box = nil }; return box }
        let state = host?.perform { p, _, _ in p }
        host?.stop()
        return state
    }

    /// Runs `body` on the simulated pump.
    func with<R>(_ body: (inout NewEraSimulatedPump, MonotonicInstant) -> R) -> R? {
        guard let host = hostBox.withLock({ $0 }) else { return nil }
        return host.perform { p, now, _ in body(&p, now) }
    }

    var state: NewEraSimulatedPump? { with { p, _ in p } }

    func inject(_ name: String, _ arguments: [String] = []) -> String? {
        with { p, now in try? p.inject(FaultCommand(name: name, arguments: arguments), at: now) } ?? nil
    }

    func shutdown() {
        unplug()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Collects a pump's events from its stream on a background task.
final class PumpEventLog: Sendable {
    let events = Shared<[PumpEvent]>([])
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(_ pump: some InfusionPump) {
        let stream = pump.events
        let events = self.events
        let t = Task { for await event in stream { events.update { $0.append(event) } } }
        task.withLock { $0 = t }
    }

    var alarms: [PumpAlarms] { events.get.compactMap { if case let .alarms(a, _) = $0 { a } else { nil } } }
    var connections: [(DeviceConnection, MonotonicInstant)] {
        events.get.compactMap { if case let .connection(c, at) = $0 { (c, at) } else { nil } }
    }

    func cancel() { task.withLock { $0?.cancel() } }
}
