// Virtual-time session benchmark (DESIGN.md "Performance budgets": a 4-hour session with 75 Hz oximetry
// simulates in under 5 s). One iteration = the whole system in virtual time (`VirtualSession`): the simulated
// New Era pump and Nonin DF2 oximeter (75 frames/s at 9600 baud) around the virtual patient, the real driver
// endpoints (`NewEraSession`, `NoninSession`) and the real supervisor rule engine stepped every 10 ms and on
// every new input, for a 4-hour ketamine program (80 kg, 0.15 mg/kg/h of 1 mg/mL: 48 mL, one 60 mL syringe).
//
// The budget is asserted in the benchmark itself, on the CPU time the simulating thread used: an iteration
// that needs 5 s or more of CPU throws, which fails the run (package-benchmark's static thresholds are p90
// tolerances, awkward for one budget). Wall time is reported beside it (`wallClock`, and the custom
// "wall ms" metric): on the shared 2-core development VM it also counts the time the thread waited for a
// core while other builds ran, so it is recorded, not asserted (README "Virtual time").
#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import DeviceSimulators
import Foundation
import InfusionCore
import SessionSimulation
import Supervisor

/// The shipped drug library's ketamine program: 80 kg, 0.15 mg/kg/h of 1 mg/mL for 4 h (12 mL/h).
func fourHourProgram() throws -> ValidatedProgram {
    let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")
    let library = try DrugLibrary.load(text: try String(contentsOf: url, encoding: .utf8), source: url.path)
    let request = ProgramRequest(
        profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(1), weight: .kilograms(80),
        dose: .weightBased(.milligramsPerKilogramPerHour(0.15), .milligramsPerKilogramPerHour), duration: .seconds(4 * 3600))
    guard let program = ProgramValidator.validate(request, library: library).acceptedProgram else {
        throw BenchmarkFailure("the benchmark program (0.15 mg/kg/h for 4 h) was not accepted by \(url.path)")
    }
    return program
}

/// The uneventful scenario's patient (Simulator/Scenarios/uneventful.toml), with physiology noise.
func uneventfulScenario() throws -> Scenario {
    try Scenario.load(text: """
        format = 1
        [scenario]
        name = "Uneventful 4-hour infusion (benchmark)"
        duration = "5 h"
        [patient]
        weight = "80 kg"
        spo2 = "97 %"
        pulse_rate = "72 bpm"
        noise_seed = 1
        """, source: "VirtualSessionBenchmarks")
}

/// Why a benchmark iteration failed.
struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let budget: Duration = .seconds(5)

/// CPU time used by the calling thread so far (CLOCK_THREAD_CPUTIME_ID).
func threadCPUTime() -> Duration {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return .seconds(Int64(spec.tv_sec)) + .nanoseconds(Int64(spec.tv_nsec))
}

func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
}

let benchmarks: @Sendable () -> Void = {
    let frames = BenchmarkMetric.custom("oximeter frames decoded", polarity: .prefersLarger, useScalingFactor: false)
    let steps = BenchmarkMetric.custom("supervisor steps", polarity: .prefersLarger, useScalingFactor: false)
    let cpu = BenchmarkMetric.custom("thread CPU ms", polarity: .prefersSmaller, useScalingFactor: false)
    let wall = BenchmarkMetric.custom("wall ms", polarity: .prefersSmaller, useScalingFactor: false)

    Benchmark("Virtual session 4 h at 75 Hz",
              configuration: .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident, cpu, wall, frames, steps],
                                   timeUnits: .milliseconds, warmupIterations: 0, scalingFactor: .one,
                                   maxDuration: .seconds(60), maxIterations: 5)) { benchmark in
        let program = try fourHourProgram()
        let scenario = try uneventfulScenario()
        let clock = ContinuousClock()
        benchmark.startMeasurement()
        let start = clock.now
        let cpuStart = threadCPUTime()
        let session = try VirtualSession(program: program, scenario: scenario, script: .start(at: .seconds(5)))
        let summary = session.run(until: .seconds(4 * 3600 + 30))
        let used = threadCPUTime() - cpuStart
        let elapsed = clock.now - start
        benchmark.stopMeasurement()
        benchmark.measurement(cpu, milliseconds(used))
        benchmark.measurement(wall, milliseconds(elapsed))
        benchmark.measurement(frames, summary.oximeterFramesDecoded)
        benchmark.measurement(steps, summary.supervisorSteps)
        guard summary.finalMode == .complete, summary.oximeterFramesDecoded >= 75 * 4 * 3600 else {
            throw BenchmarkFailure("the 4-hour session did not run as it should: mode \(summary.finalMode), "
                + "\(summary.oximeterFramesDecoded) frames\n\(summary.timeline)")
        }
        guard used < budget else {
            throw BenchmarkFailure("a 4-hour virtual session took \(used) of CPU time (\(elapsed) of wall time): "
                + "the budget is \(budget) (DESIGN.md)")
        }
    }
}
