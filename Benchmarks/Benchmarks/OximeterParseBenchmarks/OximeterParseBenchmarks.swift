import Benchmark
import DeviceIO
import DeviceProtocols
import Drivers
import InfusionCore

// Parse throughput per oximeter format, in frames (or records, lines, packets) per second on one core:
// (a) through the codec's stream decoder alone, byte by byte with `push(_:)` as the drivers call it
// (the `push(contentsOf:_:)` convenience is not specialised across modules and allocates per byte), (b) through the driver's pure session endpoint (decoder
// + packet assembly + flag mapping + staleness + sample publication into EndpointEffects), fed in
// 256-byte chunks as a link would deliver them. Each iteration parses a block of 1 000 units; the
// custom metric is units per second for that block.

let framesPerSecond = BenchmarkMetric.custom("frames/s", polarity: .prefersLarger, useScalingFactor: false)
let blockSize = 1_000

/// 1 000 units of each format, with realistic values.
enum Blocks {
    static let noninValues = Nonin.PacketValues(heartRate: .beatsPerMinute(72), spo2: .percent(97), timerTicks: 10,
                                                spo2Display: .percent(97), heartRateDisplay: .beatsPerMinute(72))
    static func nonin(_ format: Nonin.FrameFormat) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<(blockSize / 25) {
            bytes += noninValues.encodedPacket(format, status: { $0 % 25 < 12 ? Nonin.FrameStatus.greenPerfusion : [] },
                                               pleth: { UInt16($0 * 9) })
        }
        return bytes
    }
    static let df2 = nonin(.df2)
    static let df7 = nonin(.df7)
    static let df8: [UInt8] = (0..<blockSize).flatMap { _ in
        Nonin.DF8Record(heartRate: .beatsPerMinute(72), spo2: .percent(97)).encoded()
    }
    static let masimo: [UInt8] = (0..<blockSize).flatMap { _ in
        Array("01/01/25 08:00:00 SN=0123456789 SPO2=097% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=027 ALARM=0000 EXC=000800\r\n".utf8)
    }
    static let contec: [UInt8] = (0..<blockSize).flatMap { index in
        Contec.RealTimeData(signalStrength: 6, pulseBeep: index % 50 == 0, pleth: UInt8(index % 128), barGraph: 5,
                            pulseRate: .beatsPerMinute(72), spo2: .percent(97), perfusionIndex: .percent(2.35)).packet.encoded()
    }

    static func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: 256).map { Array(bytes[$0..<min($0 + 256, bytes.count)]) }
    }
}

/// Times one block and records units per second.
@inline(__always)
func measure(_ benchmark: Benchmark, _ body: () -> Int) {
    let clock = SystemMonotonicClock()
    let start = clock.now()
    let units = body()
    let elapsed = clock.now() - start
    guard units == blockSize else { return }  // a block that did not parse whole is not a throughput figure
    benchmark.measurement(framesPerSecond, Int(Double(units) / max(elapsed.seconds, 1e-9)))
}

/// Feeds `chunks` to a fresh session and counts the samples it publishes times `perSample` units.
func sessionRun<S: OximeterSession>(_ make: () -> S, _ chunks: [[UInt8]], unitsPerSample: Int) -> Int {
    var session = make()
    var effects = EndpointEffects<OximeterOutput>()
    session.linkUp(at: .origin, effects: &effects)
    var samples = 0
    for chunk in chunks {
        var fx = EndpointEffects<OximeterOutput>()
        session.receive(chunk, at: .origin, effects: &fx)
        for output in fx.outputs { if case .sample = output { samples += 1 } }
    }
    return samples * unitsPerSample
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [framesPerSecond, .wallClock, .mallocCountTotal], warmupIterations: 10, maxDuration: .seconds(3), maxIterations: 2_000)

    // (a) Codec stream decoders.
    Benchmark("codec Nonin DF2 (StreamDecoder)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) {
                var decoder = Nonin.StreamDecoder(format: .df2)
                var frames = 0
                for byte in Blocks.df2 {
                    if decoder.push(byte) != nil { frames += 1 }
                    while decoder.nextPending() != nil { frames += 1 }
                }
                return frames
            }
        }
    }
    Benchmark("codec Nonin DF7 (StreamDecoder)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) {
                var decoder = Nonin.StreamDecoder(format: .df7)
                var frames = 0
                for byte in Blocks.df7 {
                    if decoder.push(byte) != nil { frames += 1 }
                    while decoder.nextPending() != nil { frames += 1 }
                }
                return frames
            }
        }
    }
    Benchmark("codec Nonin DF8 (DF8Decoder)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) {
                var decoder = Nonin.DF8Decoder()
                var records = 0
                for byte in Blocks.df8 where decoder.push(byte) != nil { records += 1 }
                return records
            }
        }
    }
    Benchmark("codec Masimo ASCII 1 (StreamDecoder)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) {
                var decoder = Masimo.StreamDecoder()
                var lines = 0
                for byte in Blocks.masimo { if case .success? = decoder.push(byte) { lines += 1 } }
                return lines
            }
        }
    }
    Benchmark("codec Contec V7 (DeviceStreamDecoder)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) {
                var decoder = Contec.DeviceStreamDecoder()
                var packets = 0
                for byte in Blocks.contec where decoder.push(byte) != nil { packets += 1 }
                return packets
            }
        }
    }

    // (b) Driver session endpoints (a sample is 25 frames for DF2/DF7, one unit otherwise).
    let df2 = Blocks.chunks(Blocks.df2), df7 = Blocks.chunks(Blocks.df7), df8 = Blocks.chunks(Blocks.df8)
    let masimo = Blocks.chunks(Blocks.masimo), contec = Blocks.chunks(Blocks.contec)
    Benchmark("driver NoninSession DF2", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) { sessionRun({ NoninSession(configuration: .init(format: .df2)) }, df2, unitsPerSample: 25) }
        }
    }
    Benchmark("driver NoninSession DF7", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) { sessionRun({ NoninSession(configuration: .init(format: .df7)) }, df7, unitsPerSample: 25) }
        }
    }
    Benchmark("driver NoninSession DF8", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) { sessionRun({ NoninSession(configuration: .init(format: .df8)) }, df8, unitsPerSample: 1) }
        }
    }
    Benchmark("driver MasimoSession", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) { sessionRun({ MasimoSession() }, masimo, unitsPerSample: 1) }
        }
    }
    Benchmark("driver ContecSession", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            measure(benchmark) { sessionRun({ ContecSession() }, contec, unitsPerSample: 1) }
        }
    }
}
