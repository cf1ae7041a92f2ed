import Foundation
import InfusionCore
import Testing
@testable import Calibration

@Suite("Calibration records (JSON) and reports (HTML/SVG, CSV)")
struct RecordReportTests {
    static func pumpRecord(factor: Double = 1, method: GravimetricMethod = .quick(), interruptAt: Duration? = nil,
                           operatorName: String = "J. Tech") throws -> PumpCalibrationRecord {
        let liquid = try TestLiquid.water(celsius: 21.5)
        var workflow = try PumpCalibrationWorkflow(plan: PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: method, density: liquid.density))
        var driver = PumpWorkflowDriver(delivery: SyntheticDelivery(rate: 25, deliveryFactor: factor, density: liquid.density.gramsPerMillilitre),
                                        interruptAt: interruptAt)
        let runMaybe = driver.run(&workflow)
        let run = try #require(runMaybe)
        return try PumpCalibrationRecord(id: UUID(uuidString: "6F1C2B3A-0000-4000-8000-000000000001") ?? UUID(),
                                         pump: pumpIdentity(), balance: balanceIdentity(), operatorName: operatorName,
                                         performedAt: testDate, liquid: liquid, run: run, notes: "after repair of the drive")
    }

    @Test("A pump record round-trips through JSON exactly, with unit-named keys")
    func pumpRecordJSON() throws {
        let record = try Self.pumpRecord()
        let data = try CalibrationJSON.encode(record)
        let decoded = try CalibrationJSON.decode(PumpCalibrationRecord.self, from: data)
        #expect(decoded == record)
        let text = String(decoding: data, as: UTF8.self)
        for key in ["\"operator\" : \"J. Tech\"", "\"performed_at\" : \"2025-10-09T08:53:20Z\"", "\"serial_number\" : \"NE1000-00417\"",
                    "\"set_rate_mL_h\" : 25", "\"elapsed_s\"", "\"grams\"", "\"ep_max_percent\"", "\"overall_error_percent\"",
                    "\"temperature_C\" : 21.5", "\"incomplete\" : false", "\"sampling_interval_s\" : 30", "\"mode\" : \"quick\""] {
            #expect(text.contains(key), "JSON lacks \(key)")
        }
    }

    @Test("An interrupted run's record keeps its samples, is marked incomplete and round-trips")
    func incompleteRecord() throws {
        let record = try Self.pumpRecord(interruptAt: .seconds(600))
        #expect(record.isIncomplete && record.verdict.outcome == .incomplete)
        #expect(record.run.samples.count == 19)
        let decoded = try CalibrationJSON.decode(PumpCalibrationRecord.self, from: CalibrationJSON.encode(record))
        #expect(decoded == record && decoded.isIncomplete && decoded.run.samples.count == 19)
        #expect(String(decoding: try CalibrationJSON.encode(record), as: UTF8.self).contains("\"incomplete\" : true"))
    }

    @Test("Test liquid: water at a temperature takes its density and citation from the table")
    func waterLiquid() throws {
        let liquid = try TestLiquid.water(celsius: 20)
        #expect(liquid.density == .waterAt20C && liquid.temperatureCelsius == 20 && liquid.densitySource.contains("Tanaka"))
        #expect(throws: CalibrationInputError.self) { try TestLiquid.water(celsius: 35) }
    }

    @Test("Records refuse a blank operator or serial, a density mismatch, and a newer schema")
    func recordValidation() throws {
        #expect(throws: CalibrationInputError.self) { try Self.pumpRecord(operatorName: "  ") }
        #expect(throws: CalibrationInputError.self) { try DeviceIdentity(kind: .pump, model: "NE-1000", serialNumber: " ") }
        let record = try Self.pumpRecord()
        #expect(throws: CalibrationInputError.self) {
            try PumpCalibrationRecord(pump: record.pump, balance: nil, operatorName: "x", performedAt: testDate,
                                      liquid: TestLiquid.water(celsius: 28), run: record.run)
        }
        var newer = try JSONSerialization.jsonObject(with: CalibrationJSON.encode(record)) as? [String: Any] ?? [:]
        newer["schema"] = 2
        let data = try JSONSerialization.data(withJSONObject: newer)
        do {
            _ = try CalibrationJSON.decode(PumpCalibrationRecord.self, from: data)
            Issue.record("a schema-2 record was accepted")
        } catch {
            #expect(error.description.contains("schema 2"))
        }
        #expect(throws: CalibrationInputError.self) { try CalibrationJSON.decode(PumpCalibrationRecord.self, from: Data("{}".utf8)) }
    }

    @Test("The HTML report is self-contained, has both charts and the verdict, and escapes text")
    func pumpHTML() throws {
        let record = try Self.pumpRecord(factor: 0.94, operatorName: "<script>alert(1)</script> & Co")
        let html = CalibrationReport.html(record)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg").count == 3)  // trumpet and flow
        #expect(html.contains("Trumpet curve") && html.contains("Flow against time"))
        #expect(html.contains("class=\"verdict fail\">FAIL"))
        #expect(html.contains("quick routine check (NOT the IEC 60601-2-24 method"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"))
        #expect(!html.contains("<script>"))
        #expect(!html.contains("http://") || html.components(separatedBy: "http://").count == 3)  // only the two SVG xmlns
        #expect(!html.contains("src=") && !html.contains("<link"))
        #expect(html.contains("claimed accuracy ±5.0 %") && html.contains("overall error A = -6."))
        #expect(!html.contains("nan") && !html.contains("NaN") && !html.contains("inf"))
    }

    @Test("An incomplete record's report says so and still plots the flow")
    func incompleteHTML() throws {
        let html = CalibrationReport.html(try Self.pumpRecord(interruptAt: .seconds(600)))
        #expect(html.contains("class=\"verdict incomplete\">INCOMPLETE"))
        #expect(html.contains("the run is incomplete"))
        #expect(html.contains("operator pressed Ctrl-C"))
        #expect(html.components(separatedBy: "<svg").count == 2)
    }

    @Test("CSV: one row per sample with empty fields for missing values; results as one tidy table")
    func pumpCSV() throws {
        var record = try Self.pumpRecord(operatorName: "=HYPERLINK(\"x\")")
        record.run.samples[5] = BalanceSample(index: 5, elapsed: .seconds(150), problem: .noReply)
        let samples = CalibrationReport.samplesCSV(record).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(samples.first == "sample,scheduled_s,elapsed_s,grams,stable,problem,flow_mL_h")
        #expect(samples.count == 61 + 2)  // header, 61 samples, trailing empty line
        #expect(samples[6].hasPrefix("5,150.000,150.000,,,no reply,"))
        #expect(samples[1].hasPrefix("0,0.000,0.150,"))
        let results = CalibrationReport.resultsCSV(record)
        #expect(results.contains("overall_error,,,,,"))
        #expect(results.contains("ep_max,2,4,37,0,") && results.contains("ep_min,19,38,3,0,"))
        #expect(results.contains("verdict,,,,,pass,") && results.contains("incomplete,,,,,0,"))
        #expect(results.contains("operator,,,,,\"'=HYPERLINK(\"\"x\"\")\","))
    }

    @Test("Oximeter record: JSON round trip, HTML with the bias chart, CSV of readings and results")
    func oximeterRecord() throws {
        var workflow = try OximeterVerificationWorkflow(plan: OximeterVerificationPlan())
        let run = try #require(WorkflowTests.driveOximeter(&workflow).0)
        let record = try OximeterVerificationRecord(
            oximeter: DeviceIdentity(kind: .oximeter, manufacturer: "Nonin", model: "7500", serialNumber: "501234567", protocolName: "nonin-df7"),
            simulator: DeviceIdentity(kind: .simulator, manufacturer: "Fluke", model: "Index 2XL", serialNumber: "9876"),
            operatorName: "J. Tech", performedAt: testDate, run: run)
        #expect(try CalibrationJSON.decode(OximeterVerificationRecord.self, from: CalibrationJSON.encode(record)) == record)
        let html = CalibrationReport.html(record)
        #expect(html.contains("class=\"verdict pass\">PASS") && html.contains("<svg") && html.contains("A_rms claim ±4.0 %"))
        let readings = CalibrationReport.readingsCSV(record).split(separator: "\n")
        #expect(readings.first == "set_point,set_spo2,set_pulse_rate,elapsed_s,spo2,pulse_rate,flags,used")
        #expect(readings.count == 1 + run.collections.reduce(0) { $0 + $1.readings.count })
        #expect(readings.contains { $0.contains(",,75,,0") })  // a missing SpO2 is an empty field, not 0
        let results = CalibrationReport.resultsCSV(record)
        #expect(results.contains("arms,1.0000,") && results.contains("verdict,pass,"))
    }
}

let testDate = Date(timeIntervalSince1970: 1_760_000_000)  // 2025-10-09T08:53:20Z

func pumpIdentity() throws -> DeviceIdentity {
    try DeviceIdentity(kind: .pump, manufacturer: "New Era", model: "NE-1000", serialNumber: "NE1000-00417", firmware: "V3.928",
                       protocolName: "newera", port: "/dev/ttyUSB0")
}

func balanceIdentity() throws -> DeviceIdentity {
    try DeviceIdentity(kind: .balance, manufacturer: "Mettler Toledo", model: "XS204", serialNumber: "B123456789", protocolName: "mt-sics")
}
