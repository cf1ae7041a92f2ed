/// What was wrong with a received Fresenius frame or control sequence. `negativeAcknowledgement`
/// says which `NAK` the receiver must send back (nil: send nothing).
public enum FreseniusFrameError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The checksum digits do not match the frame content.
    case checksumMismatch(message: String, received: UInt8, computed: UInt8)
    /// The two characters before `ETX` are not hex digits.
    case malformedChecksum(text: String)
    /// The frame starts with a digit other than `0`...`5`.
    case badAddress(character: UInt8)
    /// The frame has no message, or no room for a message and a checksum.
    case frameTooShort(length: Int)
    /// More than `limit` bytes arrived between `STX` and `ETX`; the frame was dropped.
    case frameTooLong(limit: Int)
    /// A control character (other than the link bytes ENQ/ACK/NAK/DC4) arrived inside the frame.
    case controlCharacterInFrame(byte: UInt8)
    /// A byte outside 7-bit printable ASCII (0x7E, 0x7F or bit 7 set) arrived inside the frame: check
    /// the port is 7E1.
    case invalidCharacter(byte: UInt8)
    /// A new `STX` arrived before the `ETX` of the previous frame; `discardedBytes` were dropped.
    case incompleteFrame(discardedBytes: Int)
    /// `NAK` was followed by a byte that is not a known error digit.
    case unknownNAKCode(byte: UInt8)
    /// `NAK` was followed directly by another control byte instead of an error digit.
    case missingNAKCode

    /// The `NAK` code the receiver answers this error with, or nil when it must not answer (errors in
    /// the control bytes themselves are never answered, to avoid NAK storms).
    public var negativeAcknowledgement: FreseniusNAKCode? {
        switch self {
        case .checksumMismatch, .malformedChecksum: return .badChecksum
        case .badAddress: return .badAddress
        case .frameTooShort, .frameTooLong, .incompleteFrame: return .badFrameLength
        case .controlCharacterInFrame: return .controlCharacter
        case .invalidCharacter: return .receptionProblem
        case .unknownNAKCode, .missingNAKCode: return nil
        }
    }

    /// What went wrong and what to do next, for logs and operator messages.
    public var description: String {
        switch self {
        case let .checksumMismatch(message, received, computed):
            return "Fresenius frame \"\(message)\" carries checksum \(FreseniusHex.text(UInt32(received), minimumDigits: 2)) but its content gives \(FreseniusHex.text(UInt32(computed), minimumDigits: 2)): transmission error; answer NAK 2 and let the sender retry"
        case let .malformedChecksum(text):
            return "Fresenius frame checksum \"\(text)\" is not two hex digits: answer NAK 2"
        case let .badAddress(character):
            return "Fresenius frame address byte 0x\(FreseniusHex.text(UInt32(character), minimumDigits: 2)) is not 0...5: answer NAK 4"
        case let .frameTooShort(length):
            return "Fresenius frame of \(length) bytes is too short to hold a message and a checksum: answer NAK 7"
        case let .frameTooLong(limit):
            return "Fresenius frame longer than \(limit) bytes was dropped: answer NAK 7; if it recurs check the baud rate (19200 7E1)"
        case let .controlCharacterInFrame(byte):
            return "Fresenius frame contains control byte 0x\(FreseniusHex.text(UInt32(byte), minimumDigits: 2)): answer NAK 8"
        case let .invalidCharacter(byte):
            return "Fresenius frame contains byte 0x\(FreseniusHex.text(UInt32(byte), minimumDigits: 2)), outside 7-bit printable ASCII: check the port is set to 7E1; answer NAK 1"
        case let .incompleteFrame(discardedBytes):
            return "Fresenius frame cut off after \(discardedBytes) bytes by a new STX: answer NAK 7"
        case let .unknownNAKCode(byte):
            return "Fresenius NAK carried unknown error byte 0x\(FreseniusHex.text(UInt32(byte), minimumDigits: 2)): treat it as a failed transmission and retry once"
        case .missingNAKCode:
            return "Fresenius NAK arrived without its error digit: treat it as a failed transmission and retry once"
        }
    }
}

/// One thing the Fresenius link decoder found, in stream order.
public enum FreseniusLinkEvent: Hashable, Sendable {
    /// A frame with a good checksum. The receiver answers `FreseniusLink.acknowledgement`.
    case frame(FreseniusFrame)
    /// `ACK`: the peer received our last frame.
    case acknowledgement
    /// `NAK` + digit: the peer rejected our last frame.
    case negativeAcknowledgement(FreseniusNAKCode)
    /// `ENQ`: the pump's keep-alive. The host answers `FreseniusLink.keepAliveAnswer` (DC4) at once.
    case keepAlive
    /// `DC4`: the host's answer to a keep-alive (seen by a simulator).
    case keepAliveAnswer
    /// A frame or control sequence that was dropped. Send `error.negativeAcknowledgement` when present.
    case error(FreseniusFrameError)
}

/// Incremental Fresenius link decoder for either direction: a driver feeds it the pump's bytes, a
/// simulator the host's bytes. It separates frames from the single control bytes (ACK, NAK + digit,
/// ENQ, DC4) that may arrive between frames, or even inside a frame (they are reported and do not
/// break the frame).
///
/// Guarantees: never traps; holds at most `maximumFrameLength` bytes; bytes outside a frame are
/// skipped and counted; every `STX` starts a new frame, so it resynchronises on the next valid frame;
/// checksum errors and other bad frames surface as `.error` events carrying the `NAK` to send, and
/// are counted. The frame buffer is allocated once and reused.
///
/// A value type: owned by the task that reads the port; not for concurrent use.
public struct FreseniusLinkDecoder: Sendable {
    /// Counters since creation or the last `reset()`.
    public struct Statistics: Hashable, Sendable {
        /// Frames with a good checksum.
        public var frames = 0
        /// Frames whose checksum did not match or was not hex.
        public var checksumErrors = 0
        /// Frames dropped for other reasons (length, address, characters, cut off).
        public var malformedFrames = 0
        /// Control bytes seen (ACK, NAK, ENQ, DC4).
        public var controlBytes = 0
        /// Bytes outside any frame that were skipped.
        public var bytesSkipped = 0

        /// Creates zeroed counters.
        public init() {}
    }

    /// Default limit on the bytes between `STX` and `ETX`: room for a message well beyond the 80
    /// allowed, so an over-long but intact message reaches the application layer (which answers
    /// error `0C`) instead of being mistaken for line noise.
    public static let defaultMaximumFrameLength = 256

    /// The most bytes kept between `STX` and `ETX`.
    public let maximumFrameLength: Int
    /// Counters since creation or the last `reset()`.
    public private(set) var statistics = Statistics()

    private var buffer: [UInt8] = []
    private var inFrame = false
    private var overflowed = false
    private var awaitingNAKCode = false
    private var controlByte: UInt8?
    private var invalidByte: UInt8?

    /// Creates a decoder holding at most `maximumFrameLength` bytes of one frame (at least 8).
    public init(maximumFrameLength: Int = FreseniusLinkDecoder.defaultMaximumFrameLength) {
        self.maximumFrameLength = max(8, maximumFrameLength)
        buffer.reserveCapacity(self.maximumFrameLength)
    }

    /// Drops any partial frame or pending NAK and zeroes the statistics.
    public mutating func reset() {
        endFrame()
        awaitingNAKCode = false
        statistics = Statistics()
    }

    /// True while bytes of an unfinished frame are held.
    public var hasPartialFrame: Bool { inFrame }

    /// Bytes of the unfinished frame currently held (never more than `maximumFrameLength`).
    public var bufferedByteCount: Int { buffer.count }

    /// Feeds received bytes and calls `handle` for each event, in stream order. Partial frames (and a
    /// `NAK` whose digit has not arrived yet) are kept for the next call.
    public mutating func feed(_ bytes: some Sequence<UInt8>, _ handle: (FreseniusLinkEvent) -> Void) {
        for byte in bytes { consume(byte, handle) }
    }

    /// Feeds received bytes and returns the events they complete (convenience over `feed(_:_:)`).
    public mutating func decode(_ bytes: some Sequence<UInt8>) -> [FreseniusLinkEvent] {
        var events: [FreseniusLinkEvent] = []
        feed(bytes) { events.append($0) }
        return events
    }

    private static func isLinkControl(_ byte: UInt8) -> Bool {
        switch byte {
        case FreseniusLink.stx, FreseniusLink.etx, FreseniusLink.enq, FreseniusLink.ack,
             FreseniusLink.nak, FreseniusLink.dc4: return true
        default: return false
        }
    }

    private mutating func consume(_ byte: UInt8, _ handle: (FreseniusLinkEvent) -> Void) {
        if awaitingNAKCode {
            awaitingNAKCode = false
            if let code = FreseniusNAKCode(rawValue: byte) {
                handle(.negativeAcknowledgement(code))
                return
            }
            if Self.isLinkControl(byte) {
                handle(.error(.missingNAKCode))
                // fall through: the control byte is processed normally below
            } else {
                handle(.error(.unknownNAKCode(byte: byte)))
                return
            }
        }
        switch byte {
        case FreseniusLink.enq:
            statistics.controlBytes += 1
            handle(.keepAlive)
        case FreseniusLink.dc4:
            statistics.controlBytes += 1
            handle(.keepAliveAnswer)
        case FreseniusLink.ack:
            statistics.controlBytes += 1
            handle(.acknowledgement)
        case FreseniusLink.nak:
            statistics.controlBytes += 1
            awaitingNAKCode = true
        case FreseniusLink.stx:
            if inFrame {
                statistics.malformedFrames += 1
                handle(.error(.incompleteFrame(discardedBytes: buffer.count)))
            }
            endFrame()
            inFrame = true
        case FreseniusLink.etx:
            guard inFrame else { statistics.bytesSkipped += 1; return }
            let event = finishFrame()
            endFrame()
            handle(event)
        default:
            guard inFrame else { statistics.bytesSkipped += 1; return }
            if buffer.count >= maximumFrameLength {
                overflowed = true
            } else if byte < 0x20 || byte == 0x7F {
                if controlByte == nil { controlByte = byte }
                buffer.append(byte)
            } else if byte > 0x7D {
                if invalidByte == nil { invalidByte = byte }
                buffer.append(byte)
            } else {
                buffer.append(byte)
            }
        }
    }

    private mutating func finishFrame() -> FreseniusLinkEvent {
        let error: FreseniusFrameError
        if overflowed {
            error = .frameTooLong(limit: maximumFrameLength)
        } else if let byte = controlByte {
            error = .controlCharacterInFrame(byte: byte)
        } else if let byte = invalidByte {
            error = .invalidCharacter(byte: byte)
        } else {
            do {
                let frame = try Self.parse(buffer)
                statistics.frames += 1
                return .frame(frame)
            } catch let parseError {
                error = parseError
            }
        }
        switch error {
        case .checksumMismatch, .malformedChecksum: statistics.checksumErrors += 1
        default: statistics.malformedFrames += 1
        }
        return .error(error)
    }

    /// Parses the bytes between STX and ETX (already known to be printable ASCII).
    static func parse(_ content: [UInt8]) throws(FreseniusFrameError) -> FreseniusFrame {
        guard content.count >= 3 else { throw .frameTooShort(length: content.count) }
        let body = content[..<(content.count - 2)]
        let high = content[content.count - 2]
        let low = content[content.count - 1]
        guard let h = FreseniusHex.nibble(high), let l = FreseniusHex.nibble(low) else {
            throw .malformedChecksum(text: String(decoding: [high, low], as: UTF8.self))
        }
        let received = h << 4 | l
        let computed = FreseniusLink.checksum(body)
        guard received == computed else {
            throw .checksumMismatch(message: String(decoding: body, as: UTF8.self), received: received, computed: computed)
        }
        var address = FreseniusAddress.standalone
        var messageStart = body.startIndex
        if let first = body.first, (0x30...0x39).contains(first) {
            guard let parsed = FreseniusAddress(character: first) else { throw .badAddress(character: first) }
            address = parsed
            messageStart += 1
        }
        let message = body[messageStart...]
        guard !message.isEmpty else { throw .frameTooShort(length: content.count) }
        return FreseniusFrame(received: address, message: String(decoding: message, as: UTF8.self))
    }

    private mutating func endFrame() {
        buffer.removeAll(keepingCapacity: true)
        inFrame = false
        overflowed = false
        controlByte = nil
        invalidByte = nil
    }
}

extension FreseniusFrame {
    /// Decodes exactly one complete frame (`STX … ETX`). For byte streams use `FreseniusLinkDecoder`.
    /// Throws `FreseniusFrameError` (whose `negativeAcknowledgement` says what to answer).
    public init(decoding bytes: some Collection<UInt8>) throws(FreseniusFrameError) {
        let all = Array(bytes)
        guard all.count >= 2, all.first == FreseniusLink.stx, all.last == FreseniusLink.etx else {
            throw .frameTooShort(length: all.count)
        }
        let content = Array(all[1..<(all.count - 1)])
        if let byte = content.first(where: { $0 < 0x20 || $0 == 0x7F }) { throw .controlCharacterInFrame(byte: byte) }
        if let byte = content.first(where: { $0 > 0x7D }) { throw .invalidCharacter(byte: byte) }
        self = try FreseniusLinkDecoder.parse(content)
    }
}
