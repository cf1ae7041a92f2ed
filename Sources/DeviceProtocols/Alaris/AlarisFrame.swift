/// Alaris Asena framing (reference/protocols.md §A4, §A6): `'!' MSG '|' CRC '\r'`, where CRC is
/// CRC-16/CCITT-FALSE over the MSG bytes (without the `!`), written as four upper-case hex digits.
/// An `ESC` (0x1B) aborts a partial frame. The link is 38400 baud 8N1 (a note for driver authors; the
/// codec works on bytes and has no notion of time).
///
/// Pure; any thread; the functions allocate only the returned array.
public enum AlarisFrame {
    /// Start of frame, `!`.
    public static let start: UInt8 = 0x21
    /// Separator between the message and its CRC, `|`.
    public static let checksumSeparator: UInt8 = 0x7C
    /// End of frame, carriage return.
    public static let end: UInt8 = 0x0D
    /// Escape: the receiver discards the partial frame.
    public static let escape: UInt8 = 0x1B

    /// The CRC-16/CCITT-FALSE of the message bytes, the value written after `|`.
    public static func checksum(_ message: AlarisMessage) -> UInt16 {
        Checksums.crc16CCITTFalse(message.bytes)
    }

    /// The complete frame for `message`: `!`, the message, `|`, four upper-case hex CRC digits, CR.
    /// Example: `INF` → `!INF|4961\r`.
    public static func encode(_ message: AlarisMessage) -> [UInt8] {
        let body = message.bytes
        var frame: [UInt8] = []
        frame.reserveCapacity(body.count + 7)
        frame.append(start)
        frame.append(contentsOf: body)
        frame.append(checksumSeparator)
        frame.append(contentsOf: AlarisHex.wordBytes(Checksums.crc16CCITTFalse(body)))
        frame.append(end)
        return frame
    }

    /// Decodes exactly one complete frame (`!…|XXXX\r`, the final CR optional). For byte streams use
    /// `AlarisFrameDecoder`, which also resynchronises. Throws `AlarisFrameError` when the bytes are not
    /// one valid frame.
    public static func decode(_ bytes: some Collection<UInt8>) throws(AlarisFrameError) -> AlarisMessage {
        var content = Array(bytes)
        guard content.first == start else { throw .missingStart }
        content.removeFirst()
        if content.last == end { content.removeLast() }
        return try decodeContent(content)
    }

    /// Checks and parses the bytes between `!` and CR.
    static func decodeContent(_ content: [UInt8]) throws(AlarisFrameError) -> AlarisMessage {
        guard let bar = content.lastIndex(of: checksumSeparator) else {
            throw .missingChecksum(text: AlarisFrameError.printable(content))
        }
        let messageBytes = content[..<bar]
        let checksumBytes = content[(bar + 1)...]
        guard let received = AlarisHex.parseWord(checksumBytes) else {
            throw .malformedChecksum(text: AlarisFrameError.printable(checksumBytes))
        }
        let computed = Checksums.crc16CCITTFalse(messageBytes)
        guard computed == received else {
            throw .checksumMismatch(message: AlarisFrameError.printable(messageBytes), received: received, computed: computed)
        }
        do {
            return try AlarisMessage(bytes: messageBytes)
        } catch {
            throw .invalidMessage(error)
        }
    }
}

/// What the Alaris frame decoder found wrong with a frame. Every case is also counted in
/// `AlarisFrameDecoder.Statistics`. The pump protocol has no negative acknowledgement: a driver
/// treats a bad reply like a missing one (retry once, §A6); a simulator ignores a bad command.
public enum AlarisFrameError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `AlarisFrame.decode` was given bytes that do not start with `!`.
    case missingStart
    /// The frame has no `|` before its CR.
    case missingChecksum(text: String)
    /// The text after `|` is not four hex digits.
    case malformedChecksum(text: String)
    /// The CRC received does not match the CRC of the message: a transmission error.
    case checksumMismatch(message: String, received: UInt16, computed: UInt16)
    /// The frame's CRC is good but the message is not a valid message (empty keyword, bad character).
    case invalidMessage(AlarisMessageError)
    /// More than `limit` bytes arrived after `!` without a CR; the frame was dropped.
    case frameTooLong(limit: Int)
    /// An ESC aborted a partial frame of `discardedBytes` bytes (a normal protocol event).
    case abortedByEscape(discardedBytes: Int)
    /// A new `!` arrived before the CR of the previous frame; its `discardedBytes` bytes were dropped.
    case interruptedByNewFrame(discardedBytes: Int)

    /// What went wrong and what to do next, for logs and operator messages.
    public var description: String {
        switch self {
        case .missingStart:
            return "Alaris frame does not start with '!': pass whole frames, or feed the stream to AlarisFrameDecoder"
        case let .missingChecksum(text):
            return "Alaris frame \"\(text)\" has no '|CRC' before its CR: the frame is truncated or not an Alaris frame"
        case let .malformedChecksum(text):
            return "Alaris frame checksum \"\(text)\" is not four hex digits: the frame is corrupt; retry the command"
        case let .checksumMismatch(message, received, computed):
            return "Alaris frame \"\(message)\" carries CRC \(AlarisHex.word(received)) but its content gives \(AlarisHex.word(computed)): transmission error; retry the command and check the cable if it recurs"
        case let .invalidMessage(error):
            return "Alaris frame has a good CRC but an invalid message: \(error)"
        case let .frameTooLong(limit):
            return "Alaris frame longer than \(limit) bytes without a CR was dropped: check the baud rate (38400 8N1) and that the device is an Asena pump"
        case let .abortedByEscape(discardedBytes):
            return "Alaris frame aborted by ESC after \(discardedBytes) bytes"
        case let .interruptedByNewFrame(discardedBytes):
            return "Alaris frame of \(discardedBytes) bytes was cut off by the start of a new frame: bytes were lost; retry the command"
        }
    }

    /// Bytes shown in messages: printable ASCII as is, anything else as `\xNN`; at most 80 characters.
    static func printable(_ bytes: some Collection<UInt8>) -> String {
        var text = ""
        for byte in bytes.prefix(80) {
            if (0x20...0x7E).contains(byte) {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                text += "\\x" + AlarisHex.byte(byte)
            }
        }
        if bytes.count > 80 { text += "…" }
        return text
    }
}

/// One thing the Alaris stream decoder found: a message whose CRC checked, or a typed error.
public enum AlarisFrameEvent: Hashable, Sendable {
    /// A frame with a good CRC and a well-formed message.
    case message(AlarisMessage)
    /// A frame that was dropped, and why.
    case error(AlarisFrameError)
}

/// Incremental Alaris frame decoder for a byte stream in either direction (a driver reading pump
/// replies, a simulator reading host commands).
///
/// Guarantees: never traps on any input; holds at most `maximumFrameLength` bytes; bytes outside a
/// frame are skipped and counted; a new `!` always starts a new frame, so the decoder resynchronises
/// on the next valid frame after any garbage; CRC mismatches and other bad frames are reported as
/// `.error` events and counted. The frame buffer is allocated once and reused, so steady-state
/// decoding allocates only for the messages it returns.
///
/// A value type with no shared state: owned by the one task that reads the port; any thread may use
/// it, but not concurrently.
public struct AlarisFrameDecoder: Sendable {
    /// Counters of what the decoder has seen since it was created or reset.
    public struct Statistics: Hashable, Sendable {
        /// Frames decoded successfully.
        public var messages = 0
        /// Frames whose CRC did not match.
        public var checksumMismatches = 0
        /// Frames without `|`, with a malformed CRC field or an invalid message.
        public var malformedFrames = 0
        /// Frames dropped for exceeding `maximumFrameLength`.
        public var oversizedFrames = 0
        /// Partial frames aborted by ESC.
        public var escapeAborts = 0
        /// Partial frames cut off by a new `!`.
        public var interruptedFrames = 0
        /// Bytes received outside any frame (noise, line feeds) and skipped.
        public var bytesSkipped = 0

        /// Creates zeroed counters.
        public init() {}
    }

    /// The default limit on bytes between `!` and CR. The longest message seen in the public sources
    /// (the `INF` status reply) is under 120 bytes.
    public static let defaultMaximumFrameLength = 512

    /// The most bytes kept between `!` and CR before the frame is dropped as too long.
    public let maximumFrameLength: Int
    /// Counters since creation or the last `reset()`.
    public private(set) var statistics = Statistics()

    private var buffer: [UInt8] = []
    private var inFrame = false
    private var overflowed = false

    /// Creates a decoder that drops frames longer than `maximumFrameLength` bytes (at least 8).
    public init(maximumFrameLength: Int = AlarisFrameDecoder.defaultMaximumFrameLength) {
        self.maximumFrameLength = max(8, maximumFrameLength)
        buffer.reserveCapacity(self.maximumFrameLength)
    }

    /// Drops any partial frame and zeroes the statistics (for example after reopening the port).
    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        inFrame = false
        overflowed = false
        statistics = Statistics()
    }

    /// True while bytes of an unfinished frame are held.
    public var hasPartialFrame: Bool { inFrame }

    /// Bytes of the unfinished frame currently held (never more than `maximumFrameLength`).
    public var bufferedByteCount: Int { buffer.count }

    /// Feeds received bytes and calls `handle` for each complete frame or error, in stream order.
    /// A partial frame at the end of `bytes` is kept for the next call.
    public mutating func feed(_ bytes: some Sequence<UInt8>, _ handle: (AlarisFrameEvent) -> Void) {
        for byte in bytes {
            if let event = consume(byte) { handle(event) }
        }
    }

    /// Feeds received bytes and returns the events they complete (convenience over `feed(_:_:)`).
    public mutating func decode(_ bytes: some Sequence<UInt8>) -> [AlarisFrameEvent] {
        var events: [AlarisFrameEvent] = []
        feed(bytes) { events.append($0) }
        return events
    }

    private mutating func consume(_ byte: UInt8) -> AlarisFrameEvent? {
        switch byte {
        case AlarisFrame.start:
            let interrupted = inFrame ? buffer.count : nil
            startFrame()
            if let discarded = interrupted {
                statistics.interruptedFrames += 1
                return .error(.interruptedByNewFrame(discardedBytes: discarded))
            }
            return nil
        case AlarisFrame.escape:
            guard inFrame else { statistics.bytesSkipped += 1; return nil }
            let discarded = buffer.count
            endFrame()
            statistics.escapeAborts += 1
            return .error(.abortedByEscape(discardedBytes: discarded))
        case AlarisFrame.end:
            guard inFrame else { statistics.bytesSkipped += 1; return nil }
            defer { endFrame() }
            if overflowed {
                statistics.oversizedFrames += 1
                return .error(.frameTooLong(limit: maximumFrameLength))
            }
            do {
                let message = try AlarisFrame.decodeContent(buffer)
                statistics.messages += 1
                return .message(message)
            } catch {
                if case .checksumMismatch = error {
                    statistics.checksumMismatches += 1
                } else {
                    statistics.malformedFrames += 1
                }
                return .error(error)
            }
        default:
            guard inFrame else { statistics.bytesSkipped += 1; return nil }
            if buffer.count < maximumFrameLength {
                buffer.append(byte)
            } else {
                overflowed = true
            }
            return nil
        }
    }

    private mutating func startFrame() {
        buffer.removeAll(keepingCapacity: true)
        inFrame = true
        overflowed = false
    }

    private mutating func endFrame() {
        buffer.removeAll(keepingCapacity: true)
        inFrame = false
        overflowed = false
    }
}
