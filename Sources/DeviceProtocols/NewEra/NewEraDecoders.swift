import InfusionCore

extension NewEra {
    /// Streaming decoder for what a pump sends (driver side): basic replies `STX data ETX` and safe
    /// packets `STX len data CRC ETX`, told apart per packet by the byte after STX (a reply's first
    /// address digit vs. a length byte ≤ 47), so a driver never has to switch it between modes, and the
    /// unsolicited safe-mode alarm after a power cycle is understood even while the driver is in basic
    /// mode.
    ///
    /// Feed bytes with their arrival time (`MonotonicInstant` from the link's clock); a partial safe
    /// packet is discarded after a gap of `safeInterByteTimeout` (0.5 s). Bytes may come singly or in
    /// chunks split anywhere. Never traps; buffers are bounded by `maxDataLength` and reserved at
    /// `init`, so steady-state decoding does not allocate (except the `String` of each reply).
    /// After garbage it resynchronises on the next STX, re-scanning the bytes of a rejected safe
    /// packet so a real packet hidden behind a false start is not lost.
    ///
    /// A value type owned by one thread (the link's reader) at a time.
    public struct ReplyDecoder: Sendable {
        /// One decoding result: a reply with its framing, or a well-framed packet that was unusable.
        public typealias Event = Result<Received<Reply>, DecodingFailure>

        private var scanner: FrameScanner
        private var unreadablePackets = 0

        /// A decoder with `configuration`'s limits and time-outs.
        public init(configuration: DecoderConfiguration = DecoderConfiguration()) {
            scanner = FrameScanner(direction: .pumpToHost, configuration: configuration)
        }

        /// Counters for diagnostics.
        public var statistics: DecoderStatistics {
            var statistics = scanner.statistics
            statistics.packetsDecoded -= unreadablePackets
            statistics.unreadablePackets = unreadablePackets
            return statistics
        }
        /// Bytes held for the packet in progress (always ≤ `maxDataLength` + 4).
        public var bufferedByteCount: Int { scanner.buffer.count }
        /// True while a packet has started but not finished.
        public var hasPartialPacket: Bool { scanner.state != .idle }

        /// Forgets any partial packet and zeroes the statistics.
        public mutating func reset() {
            scanner.reset()
            unreadablePackets = 0
        }

        /// Consumes one byte that arrived at `instant`; calls `body` for each event it completes (at most
        /// a few, in stream order), synchronously.
        public mutating func push(_ byte: UInt8, at instant: MonotonicInstant, _ body: (Event) throws -> Void) rethrows {
            var unreadable = 0
            defer { unreadablePackets += unreadable }
            try scanner.push(byte, at: instant) { found, data throws in
                try body(Self.event(found, data, unreadable: &unreadable))
            }
        }

        /// Consumes a chunk of bytes that arrived together at `instant`.
        public mutating func push<Bytes: Sequence<UInt8>>(
            contentsOf bytes: Bytes, at instant: MonotonicInstant, _ body: (Event) throws -> Void
        ) rethrows {
            for byte in bytes { try push(byte, at: instant, body) }
        }

        /// Consumes a chunk and returns its events (allocates the array; for tests and simulators).
        public mutating func decode<Bytes: Sequence<UInt8>>(_ bytes: Bytes, at instant: MonotonicInstant) -> [Event] {
            var events: [Event] = []
            push(contentsOf: bytes, at: instant) { events.append($0) }
            return events
        }

        private static func event(_ found: FrameScanner.Found, _ data: ArraySlice<UInt8>, unreadable: inout Int) -> Event {
            switch found {
            case .packet(let framing):
                do {
                    return .success(Received(try Reply(parsing: NewEra.text(data)), framing: framing))
                } catch {
                    unreadable += 1
                    return .failure(.unreadable(error))
                }
            case let .checksumMismatch(received, computed):
                return .failure(.checksumMismatch(received: received, computed: computed))
            }
        }
    }

    /// Streaming decoder for what a host sends (simulator side): basic commands `data CR` (spaces and
    /// control characters removed, upper-cased, as the pump does, so `0 rat 1.5 mm\r` reads as
    /// `0RAT1.5MM`) and safe packets `STX len data CRC ETX`. An STX always starts a safe packet,
    /// whatever mode the simulated pump is in (hosts send `SAF` in safe framing to enter safe mode);
    /// each event says which framing it came in, so the simulator can answer in kind or ignore it.
    ///
    /// Timing, bounds, resynchronisation and threading as for `ReplyDecoder`. A bare CR is a status
    /// query without address (a terminal user pressing Enter gets `00S`).
    public struct CommandDecoder: Sendable {
        /// One decoding result: a command packet with its framing, or a safe packet with a bad CRC
        /// (which the pump answers with `?COM`).
        public typealias Event = Result<Received<CommandPacket>, DecodingFailure>

        private var scanner: FrameScanner

        /// A decoder with `configuration`'s limits and time-outs.
        public init(configuration: DecoderConfiguration = DecoderConfiguration()) {
            scanner = FrameScanner(direction: .hostToPump, configuration: configuration)
        }

        /// Counters for diagnostics.
        public var statistics: DecoderStatistics { scanner.statistics }
        /// Bytes held for the packet in progress (always ≤ `maxDataLength` + 4).
        public var bufferedByteCount: Int { scanner.buffer.count }
        /// True while a packet has started but not finished.
        public var hasPartialPacket: Bool { scanner.state != .idle }

        /// Forgets any partial packet and zeroes the statistics.
        public mutating func reset() { scanner.reset() }

        /// Consumes one byte that arrived at `instant`; calls `body` for each event it completes.
        public mutating func push(_ byte: UInt8, at instant: MonotonicInstant, _ body: (Event) throws -> Void) rethrows {
            try scanner.push(byte, at: instant) { found, data throws in
                switch found {
                case .packet(let framing):
                    try body(.success(Received(CommandPacket(parsing: NewEra.text(data)), framing: framing)))
                case let .checksumMismatch(received, computed):
                    try body(.failure(.checksumMismatch(received: received, computed: computed)))
                }
            }
        }

        /// Consumes a chunk of bytes that arrived together at `instant`.
        public mutating func push<Bytes: Sequence<UInt8>>(
            contentsOf bytes: Bytes, at instant: MonotonicInstant, _ body: (Event) throws -> Void
        ) rethrows {
            for byte in bytes { try push(byte, at: instant, body) }
        }

        /// Consumes a chunk and returns its events (allocates the array; for tests and simulators).
        public mutating func decode<Bytes: Sequence<UInt8>>(_ bytes: Bytes, at instant: MonotonicInstant) -> [Event] {
            var events: [Event] = []
            push(contentsOf: bytes, at: instant) { events.append($0) }
            return events
        }
    }
}

/// The byte-level state machine behind both New Era decoders: finds packet boundaries, checks safe
/// CRCs, applies the inter-byte time-out, and re-scans rejected safe packets. Reports data slices;
/// the decoders turn them into typed messages.
struct FrameScanner: Sendable {
    enum Direction: Sendable { case hostToPump, pumpToHost }
    enum State: Sendable, Equatable {
        case idle
        /// Collecting a basic command (host → pump) up to CR.
        case basicCommand
        /// Saw STX (pump → host); the next byte tells basic from safe.
        case afterSTX
        /// Collecting a basic reply up to ETX.
        case basicReply
        /// Saw STX; the next byte is the safe length.
        case safeLength
        /// Collecting `expected` bytes after STX (length byte included).
        case safeBody
    }
    enum Found: Sendable {
        case packet(NewEra.FramingMode)
        case checksumMismatch(received: UInt16, computed: UInt16)
    }

    let direction: Direction
    let configuration: NewEra.DecoderConfiguration
    private(set) var state: State = .idle
    /// Basic: the (cleaned) data. Safe: every byte after STX, length byte first.
    private(set) var buffer: [UInt8]
    private var work: [UInt8]
    private var scratch: [UInt8]
    private var expected = 0
    private var overlong = false
    private var lastByteAt: MonotonicInstant?
    private(set) var statistics = NewEra.DecoderStatistics()

    private var maxSafeLength: Int { configuration.maxDataLength + 4 }

    init(direction: Direction, configuration: NewEra.DecoderConfiguration) {
        self.direction = direction
        self.configuration = configuration
        let capacity = configuration.maxDataLength + 8
        buffer = []
        buffer.reserveCapacity(capacity)
        work = []
        work.reserveCapacity(capacity)
        scratch = []
        scratch.reserveCapacity(capacity)
    }

    mutating func reset() {
        resetPacket()
        statistics = NewEra.DecoderStatistics()
        lastByteAt = nil
    }

    private mutating func resetPacket() {
        state = .idle
        buffer.removeAll(keepingCapacity: true)
        expected = 0
        overlong = false
    }

    mutating func push(_ byte: UInt8, at instant: MonotonicInstant,
                       _ emit: (Found, ArraySlice<UInt8>) throws -> Void) rethrows {
        if state != .idle, let last = lastByteAt {
            let timeout: Duration?
            switch state {
            case .basicCommand, .basicReply: timeout = configuration.basicInterByteTimeout
            default: timeout = configuration.safeInterByteTimeout
            }
            if let timeout, instant - last >= timeout {
                statistics.timeouts += 1
                resetPacket()
            }
        }
        lastByteAt = instant

        work.removeAll(keepingCapacity: true)
        work.append(byte)
        var index = 0
        while index < work.count {
            let next = work[index]
            index += 1
            if try !step(next, emit) {
                // Re-scan what the rejected packet held (all bytes after its STX), then the rest.
                scratch.removeAll(keepingCapacity: true)
                scratch.append(contentsOf: buffer)
                scratch.append(contentsOf: work[index...])
                swap(&work, &scratch)
                index = 0
                resetPacket()
            }
        }
    }

    /// Advances by one byte. Returns false when the safe packet in progress must be abandoned and its
    /// bytes (now all in `buffer`) re-scanned.
    private mutating func step(_ byte: UInt8, _ emit: (Found, ArraySlice<UInt8>) throws -> Void) rethrows -> Bool {
        let stx = NewEra.Framing.stx, etx = NewEra.Framing.etx
        switch state {
        case .idle:
            if byte == stx {
                state = direction == .hostToPump ? .safeLength : .afterSTX
            } else if direction == .hostToPump {
                state = .basicCommand
                try basicCommandByte(byte, emit)
            } else {
                statistics.bytesSkipped += 1
            }
            return true

        case .basicCommand:
            if byte == stx {
                // A safe packet starts: whatever basic text came before was never terminated.
                if !buffer.isEmpty || overlong { statistics.framingErrors += 1 }
                resetPacket()
                state = .safeLength
            } else {
                try basicCommandByte(byte, emit)
            }
            return true

        case .afterSTX:
            if byte == stx {
                statistics.framingErrors += 1
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                state = .basicReply
                buffer.append(byte)
            } else {
                state = .safeLength
                return safeLengthByte(byte)
            }
            return true

        case .basicReply:
            if byte == etx {
                statistics.packetsDecoded += 1
                try emit(.packet(.basic), buffer[...])
                resetPacket()
            } else if byte == stx {
                statistics.framingErrors += 1
                resetPacket()
                state = .afterSTX
            } else if byte < 0x20 || byte >= 0x7F {
                statistics.framingErrors += 1
                resetPacket()
            } else if buffer.count >= configuration.maxDataLength {
                statistics.overlongPackets += 1
                resetPacket()
            } else {
                buffer.append(byte)
            }
            return true

        case .safeLength:
            return safeLengthByte(byte)

        case .safeBody:
            buffer.append(byte)
            let position = buffer.count - 1  // index in buffer; 0 is the length byte
            let crcStart = expected - 3
            if position < crcStart {
                guard byte >= 0x20 && byte < 0x7F else {
                    statistics.framingErrors += 1
                    return false
                }
                return true
            }
            guard buffer.count == expected else { return true }
            guard byte == etx else {
                statistics.framingErrors += 1
                return false
            }
            let data = buffer[1..<crcStart]
            let received = UInt16(buffer[crcStart]) << 8 | UInt16(buffer[crcStart + 1])
            let computed = Checksums.crc16XMODEM(data)
            guard received == computed else {
                statistics.checksumErrors += 1
                try emit(.checksumMismatch(received: received, computed: computed), data)
                return false
            }
            statistics.packetsDecoded += 1
            try emit(.packet(.safe), data)
            resetPacket()
            return true
        }
    }

    private mutating func safeLengthByte(_ byte: UInt8) -> Bool {
        buffer.append(byte)
        let length = Int(byte)
        if length < 4 {
            statistics.framingErrors += 1
            return false
        }
        if length > maxSafeLength {
            statistics.overlongPackets += 1
            return false
        }
        expected = length
        state = .safeBody
        return true
    }

    private mutating func basicCommandByte(_ byte: UInt8, _ emit: (Found, ArraySlice<UInt8>) throws -> Void) rethrows {
        if byte == NewEra.Framing.carriageReturn {
            if overlong {
                statistics.overlongPackets += 1
            } else {
                statistics.packetsDecoded += 1
                try emit(.packet(.basic), buffer[...])
            }
            resetPacket()
            return
        }
        // The pump removes spaces and control characters and converts to upper case.
        guard byte > 0x20 && byte != 0x7F else { return }
        guard !overlong else { return }
        guard buffer.count < configuration.maxDataLength else {
            overlong = true
            buffer.removeAll(keepingCapacity: true)
            return
        }
        let upper = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) ? byte - 0x20 : byte
        buffer.append(upper)
    }
}
