"""A call from the spoke to the hub's doctor, measured: the time from "Call hub" to the first picture from the
doctor, the bitrates the spoke sends, and what the call does on a 256 kbit/s link and on a 64 kbit/s one.

Each scenario is one real call: a Spoke PC (its own encrypted data, enrolled, a queued case synced) rings with
`call_hub`, as the "Call hub" button does, its camera a video file and its microphone PulseAudio's 440 Hz sine
source; the hub (`sync.hub`, SQLite) runs with a doctor on duty who answers with an aiortc peer
(tests/calls/doctor_peer.py, the console's own WebSocket). On loopback both run in this namespace; for a
link, the hub and the doctor run in one network namespace and the spoke in another, joined by a veth pair
with TBF at the rate in each direction (this kernel has no netem: ../shared/PLATFORM.md).

Targets (issue 15): video kept at 256 kbit/s, audio only at 64 kbit/s, audio never lost. Needs root for the
namespaces. Run on purpose:
    sudo .venv/bin/python bench/call_bench.py [--seconds 25] [--only loopback|256|64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import poor_link_bench  # noqa: E402
from bench.poor_link_bench import HUB_IP, HUB_NS, SPOKE_NS, in_ns, teardown_link  # noqa: E402

PORT = 8471


def setup_link(rate_kbit: int) -> None:
    # A queue of at most 300 ms, as a rural link's modem keeps; what does not fit is dropped. No added loss.
    poor_link_bench.setup_link(rate_kbit, 0, queue="300ms")


# --- the hub's side: the hub, its doctor on duty, who answers the first call -------------------------------------
def hub_role(args) -> None:
    import uvicorn

    from sync.hub.app import create_app
    from sync.hub.service import Hub, make_hub_engine
    from tests.calls.doctor_peer import DoctorPeer

    work = Path(args.work)
    hub = Hub(make_hub_engine(f"sqlite:///{work / 'hub.sqlite'}"), media_dir=work / "hub-media")
    hub.create_schema()
    facility = hub.create_facility("HWC Bench", "HWC-BENCH-01")
    org = hub.create_hub("District Hospital (bench)", "district hospital")
    admin = hub.add_staff(None, org, "admin", "Bench Admin", "admin-pass-12", "admin")
    doctor = hub.add_staff(admin, org, "dr.bench", "Dr Bench", "doctor-pass-12", "doctor", qualification="MBBS",
                           registration_number="BENCH-1", specialities=("General medicine",))
    hub.assign_facility(admin, facility, org)
    doctor = hub.set_on_duty(doctor, True)
    (work / "code").write_text(hub.enroll_code(facility))
    server = uvicorn.Server(uvicorn.Config(create_app(hub), host=args.listen, port=PORT, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + args.seconds + 120
    while time.monotonic() < deadline:
        ringing = hub.ringing_calls(doctor)
        if ringing:
            break
        time.sleep(0.05)
    else:
        sys.exit("no call rang")
    call_id = ringing[0].id
    hub.answer_call(doctor, call_id)
    peer = DoctorPeer(f"http://{args.listen}:{PORT}", hub.sign_in("dr.bench", "doctor-pass-12").token, call_id,
                      []).start()
    peer.closed.wait(args.seconds + 60)
    (work / "doctor.json").write_text(json.dumps({"frames": peer.frames, "audio": peer.audio, "modes": peer.modes}))
    server.should_exit = True


# --- the spoke's side: a real Spoke PC rings about its queued case -----------------------------------------------
def spoke_role(args) -> None:
    import cv2
    import numpy as np

    from spoke_client.domain.model import CaseStatus, ConsentGiver, ConsentMethod
    from spoke_client.paths import DataPaths
    from spoke_client.services.auth import FacilityForm
    from spoke_client.services.call import call_hub
    from spoke_client.services.cases import CaseForm
    from spoke_client.services.patients import PatientForm
    from spoke_client.services.runtime import open_services
    from spoke_client.services.sync_local import enroll, sync_once

    work = Path(args.work)
    video = work / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    rng = np.random.default_rng(1)
    for i in range(30):   # a moving, textured picture (a still one would cost the encoder nothing)
        frame = rng.integers(0, 40, (480, 640, 3), dtype=np.uint8) + 100
        cv2.circle(frame, (200 + i * 8, 240), 90, (40, 80, 200), -1)
        writer.write(frame)
    writer.release()
    services = open_services(DataPaths(work / "spoke"))
    _f, admin = services.auth.setup(FacilityForm("HWC Bench", "HWC-BENCH-01", "Sitapur", "UP"), "admin", "Asha",
                                    "bench-pass-1")
    patient = services.patients.register(admin, PatientForm(name="Bench Patient", sex="female", age_years=50,
                                                            village="Rampur"))
    case = services.cases.open_case(admin, patient.id)
    services.cases.save(admin, case.id, CaseForm(complaints=("Chest pain",)))
    services.cases.record_consent(admin, case.id, ConsentGiver.PATIENT, "Bench Patient", ConsentMethod.VERBAL)
    services.cases.transition(admin, case.id, CaseStatus.READY)
    services.cases.transition(admin, case.id, CaseStatus.QUEUED)
    deadline = time.monotonic() + 60
    while not (work / "code").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"http://{args.hub}:{PORT}"
    for _ in range(100):
        try:
            enroll(services.store, services.paths, url, (work / "code").read_text(), "bench", allow_http=True)
            break
        except Exception:   # noqa: BLE001 - the hub is still starting
            time.sleep(0.1)
    assert sync_once(services.store, services.paths, verify=False).error is None

    class Events:
        first_remote: float | None = None
        states: list[tuple[float, str, str]] = []
        links: list[str] = []

        def state(self, code: str, text: str) -> None:
            self.states.append((time.monotonic() - t0, code, text))

        def remote_frame(self, _frame) -> None:
            if self.first_remote is None:
                self.first_remote = time.monotonic() - t0

        def local_frame(self, _frame) -> None:
            pass

        def link(self, level: str, _text: str) -> None:
            self.links.append(level)

    events = Events()
    t0 = time.monotonic()
    call = call_hub(services.store, services.paths, case.id, admin.full_name, events, camera_source=str(video))
    deadline = time.monotonic() + 60
    while call.state != "live" and not call.finished.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    live_at = time.monotonic()
    audio_at_live = call.stats.audio_frames_in
    modes: list[tuple[float, str]] = [(0.0, call.stats.mode)]
    # The doctor's sound during the sound-only stretches: (seconds, frames) summed over them, from 1 s after each
    # switch (what was already queued on the link drains first).
    quiet = [0.0, 0]
    mark = None
    while time.monotonic() - live_at < args.seconds and not call.finished.is_set():
        now = time.monotonic()
        if call.stats.mode != modes[-1][1]:
            modes.append((round(now - live_at, 1), call.stats.mode))
            if mark is not None:
                quiet[0] += now - mark[0]
                quiet[1] += call.stats.audio_frames_in - mark[1]
            mark = None
        if call.stats.mode == "audio" and mark is None and now - live_at - modes[-1][0] >= 1:
            mark = (now, call.stats.audio_frames_in)
        time.sleep(0.1)
    if mark is not None:
        quiet[0] += time.monotonic() - mark[0]
        quiet[1] += call.stats.audio_frames_in - mark[1]
    after = quiet[1] / quiet[0] if quiet[0] > 0 else None
    seconds = time.monotonic() - live_at
    audio_rate = (call.stats.audio_frames_in - audio_at_live) / seconds
    out = {"first_remote_s": events.first_remote, "video_kbps": call.stats.sent_kbps("video"),
           "audio_kbps": call.stats.sent_kbps("audio"), "modes": modes, "audio_frames_per_s": audio_rate, "audio_after_switch": after,
           "video_frames_in": call.stats.video_frames_in, "links": events.links[-5:],
           "states": [s[1] for s in events.states]}
    call.hang_up()
    call.wait(15)
    services.close()
    print(json.dumps(out))


# --- the scenarios ------------------------------------------------------------------------------------------------
def scenario(name: str, rate_kbit: int | None, args, pulse_env: dict[str, str]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="spoke-call-bench-"))
    me = [sys.executable, __file__, "--seconds", str(args.seconds), "--work", str(work)]
    env = dict(os.environ, **pulse_env)
    if rate_kbit:
        setup_link(rate_kbit)
        hub_cmd, spoke_cmd = in_ns(HUB_NS, *me, "--role", "hub", "--listen", HUB_IP), \
            in_ns(SPOKE_NS, *me, "--role", "spoke", "--hub", HUB_IP)
    else:
        hub_cmd, spoke_cmd = [*me, "--role", "hub", "--listen", "127.0.0.1"], [*me, "--role", "spoke", "--hub",
                                                                                "127.0.0.1"]
    try:
        hub = subprocess.Popen(hub_cmd, cwd=ROOT, env=env)
        spoke = subprocess.run(spoke_cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.seconds + 240)
        if spoke.returncode != 0:
            hub.kill()
            raise SystemExit(f"{name}: the spoke's side failed:\n{spoke.stderr[-3000:]}")
        hub.wait(90)
        result = json.loads(spoke.stdout.strip().splitlines()[-1])
        result["doctor"] = json.loads((work / "doctor.json").read_text())
        return result
    finally:
        if rate_kbit:
            teardown_link()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=25, help="how long each call lasts once it is live")
    ap.add_argument("--only", choices=("loopback", "256", "64"))
    ap.add_argument("--role", choices=("hub", "spoke"), help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--listen", help=argparse.SUPPRESS)
    ap.add_argument("--hub", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "hub":
        return hub_role(args)
    if args.role == "spoke":
        return spoke_role(args)
    if os.geteuid() != 0:
        sys.exit("This benchmark builds network namespaces: run it as root.")
    from tests.media.conftest import start_pulse, stop_pulse

    runtime = Path(tempfile.mkdtemp(prefix="spoke-call-bench-pulse-"))
    os.chmod(runtime, 0o700)
    start_pulse(runtime)
    try:
        scenarios = [("loopback", None), ("256 kbit/s", 256), ("64 kbit/s", 64)]
        if args.only:
            scenarios = [s for s in scenarios if s[0].startswith(args.only)]
        print(f"one call per scenario, {args.seconds} s once live; camera 320x240 at 15 fps from a video file, "
              "microphone a 440 Hz sine")
        for name, rate in scenarios:
            r = scenario(name, rate, args, {"XDG_RUNTIME_DIR": str(runtime)})
            modes = ", ".join(f"{m} from {t:.0f} s" for t, m in r["modes"])
            video = f"{r['video_kbps']:.0f}" if r["video_kbps"] is not None else "-"
            audio = f"{r['audio_kbps']:.0f}" if r["audio_kbps"] is not None else "-"
            first = f"{r['first_remote_s']:.2f} s" if r["first_remote_s"] is not None else "never"
            sound_only = (f" ({r['audio_after_switch']:.0f} in the sound-only stretches)"
                          if r["audio_after_switch"] is not None else "")
            print(f"{name:>11}: Call hub -> first picture from the doctor {first}; sent video {video} kbit/s, audio "
                  f"{audio} kbit/s; mode: {modes}; doctor's sound at the spoke {r['audio_frames_per_s']:.0f} "
                  f"frames/s of 50{sound_only}; the doctor got {r['doctor']['frames']} video frames and "
                  f"{r['doctor']['audio']} sound frames; told {r['doctor']['modes'] or 'nothing'}")
        print("targets: video kept at 256 kbit/s; audio only at 64 kbit/s; audio never lost")
    finally:
        stop_pulse(runtime)


if __name__ == "__main__":
    main()
