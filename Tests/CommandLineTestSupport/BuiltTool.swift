import Foundation
import Synchronization

/// A command-line tool that SwiftPM built next to the test bundle (the test target must depend on its
/// executable target), run the way a person or a script would run it. Shared by the test targets that
/// drive `infusionctl` and other executables. A value; any thread.
public struct BuiltTool: Sendable {
    /// The executable's file name, such as "infusionctl".
    public let name: String

    /// The tool called `name`.
    public init(_ name: String) {
        self.name = name
    }

    /// Where the tool would be: next to the test runner (…/debug/, or up to three folders above it when
    /// the runner is inside a bundle), else the package's `.build/debug/`.
    public var candidates: [URL] {
        var result: [URL] = []
        if let runner = CommandLine.arguments.first {
            var directory = URL(fileURLWithPath: runner).resolvingSymlinksInPath().deletingLastPathComponent()
            for _ in 0..<4 {
                result.append(directory.appendingPathComponent(name))
                directory.deleteLastPathComponent()
            }
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        result.append(packageRoot.appendingPathComponent(".build/debug/\(name)"))
        return result
    }

    /// The first executable candidate; nil when the tool has not been built.
    public var url: URL? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// What one run of the tool did.
    public struct Run: Sendable {
        /// The exit status (or the signal number when it was killed).
        public let status: Int32
        /// Everything written to standard output, as UTF-8.
        public let stdout: String
        /// Everything written to standard error, as UTF-8.
        public let stderr: String
    }

    /// Runs the tool with `arguments` and waits for it to exit. The environment is this process's with
    /// `environment` applied on top: a value sets the variable, nil removes it. Both pipes are drained
    /// concurrently, so a tool writing much to either never blocks. Throws when the tool cannot be started.
    public func run(_ arguments: [String], environment: [String: String?] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = url ?? candidates.last
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        process.environment = variables
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let errData = Mutex(Data())
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errData.withLock { $0 = data }
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self))
    }
}
