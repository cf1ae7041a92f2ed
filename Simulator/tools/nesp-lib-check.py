"""Runs nesp-lib (florian-lapp/nesp-lib-py, PyPI `nesp-lib`) unchanged against `infusion-sim --pump newera`.

A manual check of the simulated New Era pump's fidelity; not part of CI (it needs PyPI).

    python3 -m venv /tmp/nesp && /tmp/nesp/bin/pip install nesp-lib      # pulls pyserial
    swift build --product infusion-sim
    /tmp/nesp/bin/python3 Simulator/tools/nesp-lib-check.py .build/debug/infusion-sim

Prints one line per check ("ok" or "FAIL") and exits 1 if any failed. Last run: nesp-lib 2.0.0, pyserial 3.5.
"""
import subprocess
import sys
import time

import nesp_lib
from nesp_lib.exceptions import StatusAlarmException, StateException, ChecksumRequestException

sim = subprocess.Popen([sys.argv[1], "--pump", "newera"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
line = sim.stdout.readline().strip()
path = line.split(" ")[-1]
failures = 0


def check(what, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + what + (f" ({detail})" if detail else ""))
    failures += 0 if ok else 1


def fault(text):
    sim.stdin.write(text + "\n")
    sim.stdin.flush()
    print("     sim: " + sim.stdout.readline().strip())


try:
    print(f"     infusion-sim: {line}")
    port = nesp_lib.Port(path, 19200)
    # Basic mode first (nesp-lib's default): SAF0 in safe framing with alarm-ignore, answered A?R then 00S.
    pump = nesp_lib.Pump(port)
    check("connect in basic mode, power-up alarm handled", True, f"model {pump.model_number}, firmware {pump.firmware_version}, upgrade {pump.firmware_upgrade}")
    check("model and firmware", pump.model_number == 1000 and pump.firmware_version == (3, 928))
    check("safe mode time-out read back", pump.safe_mode_timeout_s == 0)
    check("status stopped", pump.status == nesp_lib.Status.STOPPED, str(pump.status))
    pump.syringe_diameter_mm = 26.59
    check("syringe diameter", pump.syringe_diameter_mm == 26.59, str(pump.syringe_diameter_mm))
    pump.pumping_rate_ml_per_min = 1.5
    check("rate 1.5 mL/min", abs(pump.pumping_rate_ml_per_min - 1.5) < 1e-9, str(pump.pumping_rate_ml_per_min))
    pump.pumping_volume_ml = 0.05
    check("volume 0.05 mL (sent in uL)", abs(pump.pumping_volume_ml - 0.05) < 1e-9, str(pump.pumping_volume_ml))
    pump.pumping_direction = nesp_lib.PumpingDirection.INFUSE
    check("direction infuse", pump.pumping_direction == nesp_lib.PumpingDirection.INFUSE)
    started = time.monotonic()
    pump.run()  # waits while running: 0.05 mL at 1.5 mL/min is 2 s
    elapsed = time.monotonic() - started
    check("run to the volume and stop by itself", 1.8 < elapsed < 3.0, f"{elapsed:.2f} s")
    check("volume infused 0.05 mL", abs(pump.volume_infused_ml - 0.05) < 1e-6, str(pump.volume_infused_ml))
    pump.volume_infused_clear()
    check("volume infused cleared", pump.volume_infused_ml == 0.0)
except Exception as error:  # noqa: BLE001
    check("basic-mode sequence", False, repr(error))

try:
    pump.pumping_rate_ml_per_min = 1.5
    check("rate 1.5 mL/min (nesp-lib sends RAT1500UM)", abs(pump.pumping_rate_ml_per_min - 1.5) < 1e-9, str(pump.pumping_rate_ml_per_min))
    fault("pump0 empty 30mL")  # room to withdraw
    pump.pumping_volume_ml = 5
    pump.pumping_direction = nesp_lib.PumpingDirection.WITHDRAW
    pump.run(wait_while_running=False)
    check("withdraw runs", pump.status == nesp_lib.Status.WITHDRAWING, str(pump.status))
    time.sleep(0.5)
    pump.stop(wait_while_running=False)
    check("stop while withdrawing pauses", pump.status == nesp_lib.Status.PAUSED, str(pump.status))
    pump.stop()
    check("second stop stops", pump.status == nesp_lib.Status.STOPPED, str(pump.status))
    check("withdrawn counter", pump.volume_withdrawn_ml > 0, str(pump.volume_withdrawn_ml))
    pump.pumping_direction = nesp_lib.PumpingDirection.INFUSE
    pump.run_purge()
    check("purge", pump.status == nesp_lib.Status.PURGING, str(pump.status))
    pump.stop()
    pump.stop()
    pump.syringe_diameter_mm = 20.0
    pump.pumping_rate_ml_per_min = 1.0
    pump.run(wait_while_running=False)
    try:
        pump.syringe_diameter_mm = 26.59
        check("DIA while infusing gives ?NA", False, "no exception")
    except StateException:
        check("DIA while infusing: ?NA raised as StateException", True)
    pump.stop()
    pump.stop()
    try:
        pump.pumping_rate_ml_per_min = 100.0
        check("100 mL/min on a 20 mm syringe gives ?OOR", False, "no exception")
    except ValueError:
        check("rate above the syringe's limit: ?OOR raised as ValueError", True)
    # Alarms in basic mode (no auto-alarm packet): the next command gets the alarm.
    for name, expected in [("stall", "STALLED"), ("program-error", "ERROR"), ("phase-out-of-range", "RANGE")]:
        pump.run(wait_while_running=False)
        fault("pump0 " + name)
        try:
            status = pump.status
            check(name + " reported as an alarm", False, f"status {status}")
        except StatusAlarmException as error:
            check(name + " raised as StatusAlarmException " + expected, expected in repr(error), repr(error))
        check("after " + name + ": stopped, alarm acknowledged", pump.status == nesp_lib.Status.STOPPED)
except Exception as error:  # noqa: BLE001
    check("withdraw/purge/refusals/alarms", False, repr(error))

# Safe mode with nesp-lib's own heartbeat (a status query every time-out / 2).
try:
    pump.safe_mode_timeout_s = 2
    check("switch to safe mode 2 s", pump.safe_mode_timeout_s == 2)
    pump.pumping_rate_ml_per_min = 1.0
    pump.pumping_volume_ml = 50
    pump.run(wait_while_running=False)
    time.sleep(5)
    check("its heartbeat keeps the watchdog fed for 5 s", pump.status == nesp_lib.Status.INFUSING, str(pump.status))
    fault("pump0 corrupt 1")
    try:
        _ = pump.status
        check("corrupt packet gives ?COM", False, "no exception")
    except ChecksumRequestException:
        check("corrupt packet: ?COM raised as ChecksumRequestException", True)
    check("talks again after ?COM", pump.status == nesp_lib.Status.INFUSING, str(pump.status))
    pump.stop()
    pump.safe_mode_timeout_s = 0
    check("back to basic mode", pump.safe_mode_timeout_s == 0)
    # An alarm in safe mode: the pump sends the auto-alarm packet unsolicited, then answers the next command
    # with the alarm too. nesp-lib reads the unsolicited packet as the next reply and from then on is one
    # reply behind (alarm, alarm, then the previous command's answer): a limitation of nesp-lib, shown here.
    pump.safe_mode_timeout_s = 2
    pump.run(wait_while_running=False)
    fault("pump0 program-error")
    time.sleep(0.1)
    replies = []
    for _ in range(3):
        try:
            replies.append(str(pump.status))
        except StatusAlarmException as error:
            replies.append(repr(error))
    print("     safe-mode alarm, then three status reads: " + "; ".join(replies))
except Exception as error:  # noqa: BLE001
    check("safe mode", False, repr(error))

port.close()
sim.stdin.write("quit\n")
sim.stdin.flush()
sim.wait(timeout=10)
print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
