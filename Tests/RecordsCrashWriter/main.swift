// records-crash-writer: the victim of RecordsTests' crash test. Not a product.
//
// Usage: records-crash-writer DATABASE LIBRARY.toml
//
// Opens (or creates) the record database, starts a session with a validated ketamine program, then appends
// records as fast as it can until it is killed. After each append RETURNS (that is, after the commit), it
// writes one line to standard output with write(2), so a line on the pipe proves an acknowledged record:
//
//   session ID             the session was committed
//   ack SEQUENCE INDEX     event SEQUENCE ("crash-test event INDEX") was committed
//
// Every tenth record is a batch (one event, ten vital-sign samples and a pump status in one transaction).
// Exit codes: 64 usage; 1 any error (printed on standard error).
import Foundation
import InfusionCore
import Records

func emit(_ line: String) {
    // FileHandle.write is write(2): the bytes are in the pipe when it returns, so a SIGKILL right after
    // cannot lose an acknowledgement that was already printed.
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data(("records-crash-writer: " + message + "\n").utf8))
    exit(code)
}

let arguments = CommandLine.arguments
guard arguments.count == 3 else { fail("usage: records-crash-writer DATABASE LIBRARY.toml", code: 64) }

do {
    let store = try RecordStore.open(path: arguments[1])
    let text = try String(contentsOfFile: arguments[2], encoding: .utf8)
    let library = try DrugLibrary.load(text: text, source: arguments[2])
    let request = ProgramRequest(
        profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(1),
        weight: .kilograms(80), dose: .weightBased(.milligramsPerKilogramPerHour(0.35), .milligramsPerKilogramPerHour),
        duration: .seconds(2400))
    guard let program = ProgramValidator.validate(request, library: library).acceptedProgram else {
        fail("the crash-test program was not accepted by the library", code: 1)
    }
    let clock = SystemMonotonicClock()
    let id = try store.startSession(SessionStart(
        patientID: "crash-test", operatorID: "writer", startedAt: Date(), startedMonotonic: clock.now(), program: program,
        devices: [DeviceDescription(role: "pump", model: "none (crash test)")]))
    emit("session \(id)")
    var index = 0
    while true {
        index += 1
        let now = clock.now()
        let event = NewEvent(kind: .note, monotonic: now, wallClock: Date(), message: "crash-test event \(index)",
                             details: ["index": .number(Double(index))])
        if index % 10 == 0 {
            let samples = (0..<10).map { k in
                VitalSample(arrivedAt: now, measuredAt: now - .milliseconds(10 * (10 - k)), spo2: .percent(97),
                            pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(2.5))
            }
            let status = PumpStatus(receivedAt: now, state: .infusing, rate: .millilitresPerHour(28),
                                    volumeInfused: .millilitres(Double(index) / 1000))
            let sequences = try store.append(RecordBatch(events: [event], samples: samples, pumpStatuses: [status]), to: id)
            for sequence in sequences { emit("ack \(sequence) \(index)") }
        } else {
            let sequence = try store.append(event, to: id)
            emit("ack \(sequence) \(index)")
        }
    }
} catch {
    fail("\(error)", code: 1)
}
