import InfusionCore

/// Text for people: alarm titles, what the operator should do, the triggering values, and the reasons
/// for refusals. Built on demand from the plain values the tick produced; never called in the tick
/// (it allocates). Any thread.
public enum AlarmText {
    /// A short title ("SpO2 low").
    public static func title(_ cause: AlarmCause) -> String {
        switch cause {
        case .spo2Low: "SpO2 low"
        case .spo2CriticallyLow: "SpO2 critically low"
        case .spo2Warning: "SpO2 in warning band"
        case .pulseHigh: "Pulse rate high"
        case .pulseLow: "Pulse rate low"
        case .pulseWarning: "Pulse rate elevated"
        case .invalidSignal: "Oximeter signal invalid"
        case .monitoringLost: "Monitoring lost"
        case .pumpAlarm: "Pump alarm"
        case .pumpBatteryLow: "Pump battery low"
        case .pumpNearEmpty: "Syringe near empty"
        case .pumpCommunicationLost: "Pump not responding"
        case .pumpWatchdogDisarmed: "Pump watchdog not armed"
        case .rateMismatch: "Pump rate disagrees"
        case .volumeMismatch: "Pump volume disagrees"
        case .volumeCounterReset: "Pump volume counter reset"
        case .stopNotConfirmed: "Stop not confirmed"
        case .cumulativeDoseLimit: "Cumulative dose limit reached"
        case .unexpectedDelivery: "Unexpected delivery"
        case .infusionComplete: "Infusion complete"
        case .internalLimitGuard: "Rate refused by safety guard"
        }
    }

    /// What the operator should do about `cause`.
    public static func operatorAction(for cause: AlarmCause) -> String {
        switch cause {
        case .spo2Low, .spo2CriticallyLow:
            "Delivery is stopped. Assess the patient's airway and breathing now; give oxygen per protocol. Acknowledge, and restart only when SpO2 is back in range (the start checks run again)."
        case .spo2Warning:
            "Check the patient and the probe; stimulate and encourage deep breaths. Delivery continues; it stops if SpO2 falls further."
        case .pulseHigh, .pulseLow:
            "Delivery is stopped. Assess the patient (pulse, blood pressure, ECG if available). Acknowledge, and restart only when the pulse rate is back in range."
        case .pulseWarning:
            "Check the patient and the pulse reading. Delivery continues; it stops if the pulse rate rises further."
        case .invalidSignal:
            "Check the oximeter probe: reseat it on a warm finger, keep the hand still, shield it from bright light."
        case .monitoringLost:
            "Restore oximetry: check the probe, the cable and the oximeter. Without valid readings delivery stops at the end of the window."
        case .pumpAlarm:
            "Delivery is stopped. Go to the pump: clear the cause shown on it (occlusion, empty syringe, air, door). Acknowledge, then restart."
        case .pumpBatteryLow:
            "Connect the pump to mains power."
        case .pumpNearEmpty:
            "Prepare a new syringe or bag; the infusion will stop when it is empty."
        case .pumpCommunicationLost:
            "Delivery is being stopped. Check the pump's cable and power; if the pump still runs, stop it on its keypad or clamp the line."
        case .pumpWatchdogDisarmed:
            "The pump's own safety stop is not armed: check the pump's communication settings before the next start."
        case .rateMismatch:
            "Delivery is stopped: the pump did not run at the commanded rate. Check the pump's display and program. Acknowledge, then restart."
        case .volumeMismatch:
            "Delivery is stopped: the pump's volume counter disagrees with what was commanded. Check the pump and the line for free flow or occlusion."
        case .volumeCounterReset:
            "The pump's volume counter was reset (power loss or clearing); the delivered dose was carried over. Check the pump for a restart or lost program."
        case .stopNotConfirmed:
            "The pump has not confirmed it stopped. Stop it on its keypad NOW or clamp the line, then check the connection."
        case .cumulativeDoseLimit:
            "Delivery is stopped: the session's hard cumulative dose is reached. No further drug may be given in this session."
        case .unexpectedDelivery:
            "The pump is delivering without a command: it is being stopped. Check whether it was started on its keypad; clamp the line if it does not stop."
        case .infusionComplete:
            "The program is complete and delivery stopped. Observe the patient per protocol; acknowledge to clear."
        case .internalLimitGuard:
            "A rate above the validated limit was refused and delivery stopped. Secure the pump and report the fault; start a new session."
        }
    }

    /// The triggering values in words ("SpO2 87 % below 90 % for 15 s").
    public static func describe(_ trigger: AlarmTrigger) -> String {
        switch trigger {
        case .none: return ""
        case let .spo2(value, limit, lasted):
            return "SpO2 \(value.formatted(fractionDigits: 1)) against a limit of \(limit.formatted(fractionDigits: 1)) for \(lasted.humanReadable)"
        case let .pulse(value, limit, lasted):
            return "pulse \(value.formatted(fractionDigits: 0)) against a limit of \(limit.formatted(fractionDigits: 0)) for \(lasted.humanReadable)"
        case let .signal(quality, lasted):
            let flags = quality.names.isEmpty ? "no SpO2 or pulse value" : quality.names.joined(separator: ", ")
            return "\(flags) for \(lasted.humanReadable)"
        case let .noValidData(lasted, window):
            return "no valid reading for \(lasted.humanReadable) (window \(window.humanReadable))"
        case let .pumpAlarms(alarms):
            return alarms.names.isEmpty ? "pump alarm" : alarms.names.joined(separator: ", ")
        case let .pumpSilent(age, link):
            return "last status \(age.map { "\($0.humanReadable) ago" } ?? "never received"), link \(link)"
        case let .rate(commanded, reported, lasted):
            return "commanded \(commanded), pump reports \(reported.map(\.description) ?? "no rate") for \(lasted.humanReadable)"
        case let .volume(expected, reported):
            return "expected \(expected.formatted(fractionDigits: 2)), pump counted \(reported.formatted(fractionDigits: 2))"
        case let .counterReset(before, after):
            return "counter went from \(before.formatted(fractionDigits: 2)) to \(after.formatted(fractionDigits: 2))"
        case let .stopUnconfirmed(elapsed, attempts):
            return "no confirmation \(elapsed.humanReadable) after the first stop; \(attempts) stop command(s) sent"
        case let .dose(delivered, limit):
            return "delivered \(delivered.formatted(fractionDigits: 2)) of a hard limit of \(limit.formatted(fractionDigits: 2))"
        case let .delivery(state, rate):
            return "pump reports \(state)\(rate.map { " at \($0)" } ?? "")"
        case let .refusedRate(rate, limit):
            return "refused \(rate) above the limit of \(limit)"
        case let .completed(delivered):
            return "delivered \(delivered.formatted(fractionDigits: 2))"
        }
    }

    /// "*** SpO2 low: SpO2 87 % against a limit of 90 % for 15 s" (IEC 60601-1-8 priority prefix).
    public static func message(_ event: AlarmEvent) -> String {
        let values = describe(event.trigger)
        return "\(prefix(event.priority)) \(title(event.cause)) (\(event.phase))" + (values.isEmpty ? "" : ": \(values)")
    }

    /// "*** SpO2 low [active]: …" for a current alarm status.
    public static func message(_ status: AlarmStatus) -> String {
        let values = describe(status.trigger)
        let ack = status.acknowledged ? ", acknowledged" : ""
        return "\(prefix(status.priority)) \(title(status.cause)) [\(status.state)\(ack)]" + (values.isEmpty ? "" : ": \(values)")
    }

    /// Why a start was refused, and what to do.
    public static func reason(_ refusal: StartRefusal) -> String {
        switch refusal {
        case .sessionEnded: "the session has ended: set up a new session to give more drug"
        case .alreadyDelivering: "delivery is already running"
        case .notAcknowledged: "the supervisor stopped delivery: acknowledge the alarm first, then start again"
        case .monitorNotConnected: "the oximeter is not connected: connect it and wait for valid readings"
        case .noVitals: "no oximeter reading yet: put the probe on and wait for valid readings"
        case .vitalsStale: "the last oximeter reading is too old: check the probe and wait for a fresh reading"
        case .vitalsInvalid: "the oximeter reading is invalid (probe off, no pulse or low signal): reseat the probe"
        case .spo2TooLow: "SpO2 is below the start minimum: assess the patient before starting"
        case .pulseTooLow: "pulse rate is below the start minimum: assess the patient before starting"
        case .pulseTooHigh: "pulse rate is above the start maximum: assess the patient before starting"
        case .pumpNotConnected: "the pump is not responding: check its cable and power"
        case .pumpNotStopped: "the pump does not report itself stopped: stop it on its keypad and check the connection"
        case .pumpAlarm: "the pump reports an alarm: clear it on the pump first"
        case .pumpWatchdogNotArmed: "the pump's own communication watchdog is not armed: reconnect the pump so the driver arms it"
        case .stopNotConfirmed: "the pump has not confirmed the last stop: check the pump before starting again"
        case .cumulativeLimitReached: "the session's hard cumulative dose is reached: no further drug in this session"
        case .programFinished: "the program has no time left: validate a new program"
        }
    }

    /// Why an operator action was refused, and what to do.
    public static func reason(_ refusal: ActionRefusal) -> String {
        switch refusal {
        case .notDelivering: "delivery is not running, so there is nothing to pause"
        case .notPaused: "delivery is not paused by the operator: use start after a supervisor stop has been acknowledged"
        case .sessionEnded: "the session has already ended"
        case .titrationForAnotherProgram: "the titration was validated for another program: validate it for the running one"
        case .titrationAboveLimit: "the titration's rate is above its validated limit: validate the new dose again"
        case .titrationNotAllowedNow: "a titration applies only to a running or operator-paused maintenance phase"
        }
    }

    private static func prefix(_ priority: AlarmPriority) -> String {
        switch priority { case .high: "***"; case .medium: "**"; case .low: "*" }
    }
}

extension AlarmCause {
    /// What the operator should do (`AlarmText.operatorAction(for:)`). Allocates; not for the tick.
    public func operatorAction() -> String { AlarmText.operatorAction(for: self) }
}
