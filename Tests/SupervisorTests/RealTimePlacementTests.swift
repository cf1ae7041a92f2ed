import Foundation
import Testing
@testable import Supervisor

@Suite("Real-time placement: which CPU the supervisor and its publishers share")
struct RealTimePlacementTests {
    @Test("pins to the highest CPU when there are several, keeping the others for everything else")
    func choice() {
        #expect(RealTimePlacement.choose(allowed: [0, 1]) == .pinned(cpu: 1))
        #expect(RealTimePlacement.choose(allowed: [0, 2, 5]) == .pinned(cpu: 5))
        #expect(RealTimePlacement.choose(allowed: [3, 1]) == .pinned(cpu: 3))
    }

    @Test("one CPU, or none readable: unpinned, with the reason")
    func unpinned() {
        guard case .unpinned(let one) = RealTimePlacement.choose(allowed: [3]) else {
            Issue.record("one CPU must not be taken by the real-time threads")
            return
        }
        #expect(one.contains("one CPU"))
        guard case .unpinned(let none) = RealTimePlacement.choose(allowed: []) else {
            Issue.record("no readable CPU set must not pin")
            return
        }
        #expect(none.contains("could not be read"))
    }

    @Test("automatic() follows this thread's affinity, as the kernel lists it")
    func automatic() throws {
        // The kernel's own list of this thread's CPUs, e.g. "Cpus_allowed_list:\t0-1" or "0,2-3".
        let status = try String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)
        let list = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }?.split(separator: "\t").last)
        let cpus = list.split(separator: ",").flatMap { range -> [Int32] in
            let ends = range.split(separator: "-").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
            return ends.count == 2 ? Array(ends[0]...ends[1]) : ends
        }
        #expect(!cpus.isEmpty)
        #expect(RealTimePlacement.allowedCPUs() == cpus)
        #expect(RealTimePlacement.automatic().cpu == (cpus.count > 1 ? cpus.max() : nil))
    }
}
