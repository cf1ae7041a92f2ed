import InfusionCore

/// What a driver's public class needs from whatever runs its pure session endpoint: submit work to the
/// endpoint (`perform`), the fast-path link for pre-encoded stop frames (`currentLink`), and `stop()`.
///
/// Two runners exist: `EndpointHost` (real link, real threads: production and pty tests) and
/// `VirtualEndpointRunner` (a `VirtualNetwork` in virtual time: a two-hour calibration in seconds).
/// A driver written against this protocol is the same code in both.
public protocol EndpointRunner<Endpoint>: AnyObject, Sendable {
    /// The endpoint run.
    associatedtype Endpoint: LinkEndpoint

    /// Runs `body` on the endpoint with the current time, then carries out its effects. See each
    /// runner for its thread rules and for when the effects' consequences (replies) have arrived.
    @discardableResult
    func perform<R>(_ body: (inout Endpoint, MonotonicInstant, inout EndpointEffects<Endpoint.Output>) -> R) -> R

    /// The link currently open, for non-allocating writes of pre-encoded frames; nil when there is none.
    var currentLink: (any ByteLink)? { get }

    /// Stops the runner: the endpoint sees its link go down; outstanding work completes as the endpoint decides.
    func stop()
}

extension EndpointHost: EndpointRunner {}
