extension Masimo {
    /// Splits a byte stream into lines at CR, LF or CR LF, skipping empty lines. A line longer than
    /// `maxLineLength` is discarded up to its terminator and counted, so a stream without line ends
    /// cannot grow the buffer. The buffer is reserved at `init` and reused; the only allocation is the
    /// `String` of each returned line. One owner at a time.
    public struct LineSplitter: ByteStreamDecoder {
        /// The longest line kept (bytes, terminator excluded).
        public let maxLineLength: Int
        private var buffer: [UInt8]
        private var discarding = false
        /// Lines returned.
        public private(set) var lines = 0
        /// Lines discarded for being longer than `maxLineLength`.
        public private(set) var overlongLines = 0

        /// A splitter keeping lines up to `maxLineLength` bytes (a Radical-7 line is about 140).
        public init(maxLineLength: Int = 256) {
            self.maxLineLength = max(1, maxLineLength)
            buffer = []
            buffer.reserveCapacity(self.maxLineLength)
        }

        /// Bytes held for the line in progress (≤ `maxLineLength`).
        public var bufferedByteCount: Int { buffer.count }

        /// Consumes one byte; returns the line it ends (without terminator), if any.
        public mutating func push(_ byte: UInt8) -> String? {
            if byte == 0x0D || byte == 0x0A {
                defer {
                    buffer.removeAll(keepingCapacity: true)
                    discarding = false
                }
                if discarding {
                    overlongLines += 1
                    return nil
                }
                guard !buffer.isEmpty else { return nil }
                lines += 1
                return String(decoding: buffer, as: UTF8.self)
            }
            guard !discarding else { return nil }
            guard buffer.count < maxLineLength else {
                discarding = true
                buffer.removeAll(keepingCapacity: true)
                return nil
            }
            buffer.append(byte)
            return nil
        }
    }

    /// Bytes in, records (or the reason a line was unusable) out: a `LineSplitter` feeding
    /// `Record(parsing:)`. A bad line never affects the next one. One owner at a time.
    public struct StreamDecoder: ByteStreamDecoder {
        private var splitter: LineSplitter
        /// Records decoded.
        public private(set) var recordsDecoded = 0
        /// Lines that were not valid records.
        public private(set) var parseErrors = 0

        /// A decoder keeping lines up to `maxLineLength` bytes.
        public init(maxLineLength: Int = 256) { splitter = LineSplitter(maxLineLength: maxLineLength) }

        /// Lines discarded for being too long.
        public var overlongLines: Int { splitter.overlongLines }
        /// Bytes held for the line in progress.
        public var bufferedByteCount: Int { splitter.bufferedByteCount }

        /// Consumes one byte; returns the parsed record (or its error) when the byte ends a line.
        public mutating func push(_ byte: UInt8) -> Result<Record, ParseError>? {
            guard let line = splitter.push(byte) else { return nil }
            do {
                let record = try Record(parsing: line)
                recordsDecoded += 1
                return .success(record)
            } catch {
                parseErrors += 1
                return .failure(error)
            }
        }
    }
}
