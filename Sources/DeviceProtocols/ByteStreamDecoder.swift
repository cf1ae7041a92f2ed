/// A push-style, incremental decoder for a byte stream from one device link.
///
/// Feed it bytes as they arrive (one at a time or in chunks of any size, split anywhere); it returns
/// a decoded message whenever one completes. Every conforming decoder bounds its buffer, never traps
/// on any input, resynchronises on its own after garbage, and does not allocate per byte once warmed
/// up (its buffers are reserved at `init` and reused).
///
/// Decoders are plain values: one owner mutates one instance (typically the link's reader thread);
/// they are `Sendable` so they can be handed between threads, but not shared while mutating.
public protocol ByteStreamDecoder: Sendable {
    /// What one complete unit of the stream decodes to.
    associatedtype Output

    /// Consumes one byte; returns the message it completed, if any.
    mutating func push(_ byte: UInt8) -> Output?
}

extension ByteStreamDecoder {
    /// Decoders that never complete two messages with one byte have nothing pending.
    public mutating func nextPending() -> Output? { nil }

    /// Consumes `bytes` in order and calls `body` for every message they complete, in stream order.
    /// Does not allocate (no intermediate array); `body` runs synchronously on the caller's thread.
    public mutating func push<Bytes: Sequence<UInt8>>(
        contentsOf bytes: Bytes, _ body: (Output) throws -> Void
    ) rethrows {
        for byte in bytes {
            if let output = push(byte) { try body(output) }
            while let output = nextPending() { try body(output) }
        }
    }

    /// Consumes `bytes` and returns every message they complete, in stream order. Convenient for
    /// tests and simulators; allocates the result array (use `push(contentsOf:_:)` on hot paths).
    public mutating func decode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> [Output] {
        var outputs: [Output] = []
        push(contentsOf: bytes) { outputs.append($0) }
        return outputs
    }
}
