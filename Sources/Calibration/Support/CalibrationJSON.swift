import Foundation

/// Reads only a record's `schema` key.
private struct SchemaProbe: Decodable { var schema: Int? }

/// JSON for calibration records: sorted keys, pretty-printed, ISO 8601 dates. Pure; any thread.
public enum CalibrationJSON {
    /// The schema version of the records this build writes and the newest it reads.
    public static let schemaVersion = 1

    /// Encodes a record (or any part of one).
    public static func encode(_ value: some Encodable) throws(CalibrationInputError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .throw
        do {
            return try encoder.encode(value)
        } catch {
            throw CalibrationInputError("the record could not be written as JSON (\(error))", fix: "report this as a bug; the record holds a non-finite number")
        }
    }

    /// Decodes a record, refusing a newer schema than this build understands.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(CalibrationInputError) -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        if let schema = try? decoder.decode(SchemaProbe.self, from: data).schema, schema > schemaVersion {
            throw CalibrationInputError("the record has schema \(schema); this build reads schema \(schemaVersion)",
                                        fix: "update infusionctl")
        }
        do {
            return try decoder.decode(type, from: data)
        } catch {
            throw CalibrationInputError("the record is not valid \(T.self) JSON (\(error))", fix: "check the file was written by infusionctl and not edited")
        }
    }
}
