import Testing
@testable import InfusionCore
@testable import Supervisor

/// The alarm manager on its own (IEC 60601-1-8 vocabulary, R-ALM-01 to R-ALM-03) and the texts
/// rendered outside the tick.
@Suite("Alarm manager")
struct AlarmManagerTests {
    let t0 = MonotonicInstant(nanoseconds: 1_000_000_000)

    func manager() -> AlarmManager { AlarmManager(audioPauseMax: .seconds(120), escalateMediumAfter: .seconds(120), now: t0) }

    @Test("a latching alarm goes active → latched → (acknowledge) inactive; a non-latching one active → inactive")
    func latching() {
        var m = manager()
        var out = StepOutput()
        m.set(.pumpAlarm, present: true, trigger: .pumpAlarms(.occlusion), now: t0, into: &out)
        #expect(m[.pumpAlarm].state == .active && m[.pumpAlarm].priority == .high && m[.pumpAlarm].category == .technical)
        m.set(.pumpAlarm, present: false, trigger: .none, now: t0 + .seconds(1), into: &out)
        #expect(m[.pumpAlarm].state == .latched)
        #expect(m[.pumpAlarm].trigger == .pumpAlarms(.occlusion), "a latched alarm keeps the values that raised it")
        m.set(.invalidSignal, present: true, trigger: .signal(.probeOff, lasted: .zero), now: t0, into: &out)
        m.set(.invalidSignal, present: false, trigger: .none, now: t0 + .seconds(1), into: &out)
        #expect(m[.invalidSignal].state == .inactive)
        #expect(out.alarmEvents.map(\.phase) == [.start, .latch, .start, .end])
        out.reset()
        #expect(m.acknowledgeAll(now: t0 + .seconds(2), into: &out) == 1)
        #expect(m[.pumpAlarm].state == .inactive)
        #expect(out.alarmEvents.map(\.phase) == [.acknowledged])
        #expect(m.highestPriority == nil)
    }

    @Test("every cause has a fixed category, priority and latching consistent with R-ALM-01")
    func properties() {
        for cause in AlarmCause.allCases {
            let p = cause.properties
            switch cause {
            case .spo2Low, .spo2CriticallyLow, .pulseHigh, .pulseLow:
                #expect(p.category == .physiological && p.priority == .high && p.latching)
            case .spo2Warning, .pulseWarning:
                #expect(p.category == .physiological && p.priority == .medium && !p.latching)
            case .infusionComplete, .pumpNearEmpty:
                #expect(p.priority == .low)
            default:
                #expect(p.category == .technical)
            }
        }
        #expect(AlarmCause.monitoringLost.properties.priority == .medium, "R-ALM-01: monitoring loss under 60 s is medium")
        #expect(AlarmCause.stopNotConfirmed.properties.priority == .high)
    }

    @Test("escalation: a medium alarm becomes high after escalateMediumAfter, and must be acknowledged again")
    func escalation() {
        var m = manager()
        var out = StepOutput()
        m.set(.spo2Warning, present: true, trigger: .none, now: t0, into: &out)
        m.acknowledgeAll(now: t0, into: &out)
        #expect(m[.spo2Warning].acknowledged)
        m.tick(now: t0 + .seconds(120) - .nanoseconds(1), into: &out)
        #expect(m[.spo2Warning].priority == .medium)
        out.reset()
        m.tick(now: t0 + .seconds(120), into: &out)
        #expect(m[.spo2Warning].priority == .high)
        #expect(!m[.spo2Warning].acknowledged)
        #expect(out.alarmEvents.first?.phase == .escalate)
        #expect(m.highestPriority == .high)
        // A restarted condition starts again at its base priority.
        m.set(.spo2Warning, present: false, trigger: .none, now: t0 + .seconds(121), into: &out)
        m.set(.spo2Warning, present: true, trigger: .none, now: t0 + .seconds(122), into: &out)
        #expect(m[.spo2Warning].priority == .medium)
    }

    @Test("audio pause: silent until its expiry, then audible again; visual state unchanged")
    func audioPause() {
        var m = manager()
        var out = StepOutput()
        m.set(.pulseWarning, present: true, trigger: .none, now: t0, into: &out)
        #expect(m.isAudible(at: t0))
        m.pauseAudio(now: t0, into: &out)
        #expect(out.audio == .paused(until: t0 + .seconds(120)))
        #expect(!m.isAudible(at: t0 + .seconds(119)))
        #expect(m[.pulseWarning].state == .active)
        out.reset()
        m.tick(now: t0 + .seconds(120) - .nanoseconds(1), into: &out)
        #expect(out.audio == nil)
        m.tick(now: t0 + .seconds(120), into: &out)
        #expect(out.audio == .expired)
        #expect(m.isAudible(at: t0 + .seconds(120)))
    }

    @Test("every alarm has a title, an operator action and rendered values; refusals have reasons")
    func texts() {
        for cause in AlarmCause.allCases {
            #expect(!AlarmText.title(cause).isEmpty)
            #expect(cause.operatorAction().count > 20, "\(cause)")
        }
        let event = AlarmEvent(cause: .spo2Low, phase: .start, priority: .high, category: .physiological, state: .active,
                               trigger: .spo2(.percent(87), limit: .percent(90), lasted: .seconds(15)), at: t0)
        #expect(AlarmText.message(event) == "*** SpO2 low (start): SpO2 87 % against a limit of 90 % for 15 s")
        #expect(AlarmText.describe(.stopUnconfirmed(elapsed: .seconds(2.1), attempts: 2)).contains("2 stop command(s)"))
        #expect(AlarmText.describe(.pumpAlarms([.occlusion, .airInLine])) == "occlusion, air in line")
        for refusal in StartRefusal.allCases { #expect(!AlarmText.reason(refusal).isEmpty) }
        for refusal in ActionRefusal.allCases { #expect(!AlarmText.reason(refusal).isEmpty) }
        for rule in SupervisorRule.allCases { #expect(!String(describing: rule.requirement).isEmpty) }
    }
}
