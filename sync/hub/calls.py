"""Calls: the generalist at a spoke rings the doctors of the hub on a case; one doctor answers; the two ends
exchange their WebRTC offer and answer through the hub. The hub carries only the signalling: the media go between
the two ends, or through the TURN server the hub names with short-lived credentials.

Everything about a call lives in the database (its state, each end's last sign of life, the messages on their
way to each end), so the spoke's WebSocket and the doctor's may be served by different workers of
`spoke-hub serve --workers N`. A call that ends for any reason (a hang-up, no answer, an end gone quiet because
its link or the hub died) becomes a `call` record on the case, which syncs to the spoke and gives the
prescription its consultation mode.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from sync.hub import casebook
from sync.hub.auth import Device, aware
from sync.hub.clinic import age_text
from sync.hub.errors import HubError
from sync.hub.models import HubCall, HubCallSignal, HubCase, HubFacility, HubFacilityHub, HubRecord, HubStaff
from sync.hub.staff import Staff, audit, utcnow

log = logging.getLogger("spoke.hub.calls")
CHANNEL = "spoke_call_signal"   # PostgreSQL's NOTIFY channel: a message waits for "<call id>:<side>"

RING_SECONDS = 60          # how long a call rings before the spoke is told nobody answered
QUIET_SECONDS = 15         # an end silent this long is gone (its link, its PC or its hub worker died)
HEARTBEAT_SECONDS = 2.0    # each end's WebSocket writes its sign of life this often
POLL_SECONDS = 0.15        # and looks for messages from the other end this often
MAX_SIGNAL_BYTES = 64 * 1024   # an SDP with every candidate is a few kB
MAX_SIGNALS = 400          # messages one end may send in a call
SIGNALS_KEPT = timedelta(days=1)
CALLABLE = ("queued", "in_consultation", "info_requested")
LIVE = ("ringing", "answered")
# What each end may send; the hub itself sends `answered`, `ended` and `error`.
FROM = {"spoke": frozenset({"offer", "mode", "quality", "hangup"}),
        "doctor": frozenset({"answer", "mode", "quality", "video", "hangup"})}
OTHER = {"spoke": "doctor", "doctor": "spoke"}
# Why a call ended, as each end shows it (the codes travel; the words are each end's, in its language).
REASONS = {
    "spoke_hung_up": "The spoke hung up.",
    "doctor_hung_up": "The doctor hung up.",
    "no_answer": "No doctor answered in time.",
    "cancelled": "The spoke stopped calling.",
    "spoke_gone": "The spoke's connection was lost.",
    "doctor_gone": "The doctor's connection was lost.",
}


@dataclass(frozen=True)
class IceConfig:
    """The STUN and TURN servers handed to both ends of each call. TURN credentials are made per call with
    coturn's shared-secret scheme (the "TURN REST API"): user "<expiry>:<name>", password
    base64(HMAC-SHA1(secret, user)), so no TURN password is ever stored or sent for long."""

    stun: tuple[str, ...] = ()
    turn: tuple[str, ...] = ()
    secret: str = field(default="", repr=False)
    ttl_seconds: int = 4 * 3600

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "IceConfig":
        env = os.environ if env is None else env
        secret = env.get("SPOKE_HUB_TURN_SECRET", "")
        if env.get("SPOKE_HUB_TURN_SECRET_FILE"):
            with open(env["SPOKE_HUB_TURN_SECRET_FILE"], encoding="utf-8") as f:
                secret = f.read().strip()
        return cls(stun=tuple(env.get("SPOKE_HUB_STUN", "").split()), turn=tuple(env.get("SPOKE_HUB_TURN", "").split()),
                   secret=secret)

    def servers(self, name: str, now: float | None = None) -> list[dict]:
        out: list[dict] = [{"urls": list(self.stun)}] if self.stun else []
        if self.turn and self.secret:
            user = f"{int(now if now is not None else time.time()) + self.ttl_seconds}:{name}"
            credential = base64.b64encode(hmac.new(self.secret.encode(), user.encode(), hashlib.sha1).digest()).decode()
            out.append({"urls": list(self.turn), "username": user, "credential": credential})
        return out


@dataclass(frozen=True)
class CallView:
    """A call as the doctor's pages show it: with the case's summary, so the doctor knows who is calling."""

    id: str
    case_id: str
    state: str
    outcome: str
    end_reason: str
    facility: str
    caller: str
    patient_sex: str
    patient_age: str
    complaints: str
    priority: int
    ringing_seconds: int
    doctor: str
    vitals: dict | None
    flags: tuple[str, ...]


class HubCalls:
    """The hub's side of calls (a part of sync.hub.service.Hub)."""

    ice = IceConfig()
    ring_seconds = RING_SECONDS
    quiet_seconds = QUIET_SECONDS

    # --- the spoke rings ------------------------------------------------------------------------------------
    def start_call(self, device: Device, case_id: str, caller: str) -> dict:
        """A new ringing call on the device's case, or a refusal the spoke shows as it is: the case is not at the
        hub yet, it is finished, a call on it already rings, or no doctor is on duty to answer."""
        with self.session.begin() as s:
            self._sweep(s)
            # Signalling messages are kept a day (for the technician), then dropped: the call record stays.
            s.execute(delete(HubCallSignal).where(HubCallSignal.at < utcnow() - SIGNALS_KEPT))
            case = s.get(HubCase, case_id)
            if case is None or case.facility_id != device.facility_id:
                raise HubError(404, "no_case", "The hub does not have this case yet. Send it first (sync), then call.")
            if case.status not in CALLABLE:
                raise HubError(409, "case_finished", "This case is finished at the hub; it cannot be called about.")
            if s.scalar(select(func.count()).select_from(HubCall).where(HubCall.case_id == case_id,
                                                                        HubCall.state.in_(LIVE))):
                raise HubError(409, "call_busy", "A call on this case is already ringing or going on.")
            if not self._doctors_on_duty(s, device.facility_id):
                raise HubError(409, "no_doctor", "No doctor of the hub is on duty now. The case stays in the queue "
                                                 "for a doctor to see.")
            now = utcnow()
            call = HubCall(id=str(uuid.uuid4()), case_id=case_id, facility_id=device.facility_id, device_id=device.id,
                           caller=caller[:200], state="ringing", outcome="", end_reason="", created_at=now,
                           ring_until=now + timedelta(seconds=self.ring_seconds), video_seen=False, spoke_seen_at=now)
            s.add(call)
            log.info("call %s rings for case %s", call.id, case_id)
        return {"call_id": call.id, "ring_seconds": self.ring_seconds,
                "ice_servers": self.ice.servers(f"spoke-{call.id[:8]}")}

    def device_call(self, device: Device, call_id: str) -> None:
        """404 unless the call is this device's own."""
        with self.session.begin() as s:
            call = s.get(HubCall, call_id) if len(call_id) <= 36 else None
            if call is None or call.device_id != device.id:
                raise HubError(404, "no_call", "No such call.")

    @staticmethod
    def _doctors_on_duty(s: Session, facility_id: str) -> int:
        hubs = select(HubFacilityHub.hub_id).where(HubFacilityHub.facility_id == facility_id)
        return s.scalar(select(func.count()).select_from(HubStaff).where(
            HubStaff.hub_id.in_(hubs), HubStaff.role == "doctor", HubStaff.active.is_(True),
            HubStaff.on_duty.is_(True))) or 0

    # --- the doctors ----------------------------------------------------------------------------------------
    def ringing_calls(self, doctor: Staff) -> list[CallView]:
        """The calls ringing now for the doctor's hub, oldest first (empty for an administrator, or a doctor off
        duty: they are not the ones being called)."""
        if doctor.role != "doctor" or not doctor.on_duty:
            return []
        with self.session.begin() as s:
            self._sweep(s)
            served = select(HubFacilityHub.facility_id).where(HubFacilityHub.hub_id == doctor.hub_id)
            rows = s.scalars(select(HubCall).where(HubCall.state == "ringing", HubCall.facility_id.in_(served))
                             .order_by(HubCall.created_at).limit(20)).all()
            return [self._view(s, c) for c in rows]

    def answer_call(self, doctor: Staff, call_id: str) -> CallView:
        """The doctor takes the call: one statement that succeeds only while it rings, so two doctors never both
        answer; the one who comes second is told who took it. The case stays where it is in the queue (the doctor
        takes it to prescribe): a call that fails leaves it waiting for a store-and-forward consultation."""
        if doctor.role != "doctor":
            raise HubError(403, "not_doctor", "Only a doctor may answer a call.")
        with self.session.begin() as s:
            self._sweep(s)
            call = self._call_at_my_hub(s, doctor, call_id)
            now = utcnow()
            answered = s.execute(update(HubCall).where(HubCall.id == call.id, HubCall.state == "ringing")
                                 .values(state="answered", doctor_id=doctor.id, answered_at=now, doctor_seen_at=now)
                                 ).rowcount
            if not answered:
                s.refresh(call)
                if call.state == "answered" and call.doctor_id == doctor.id:
                    return self._view(s, call)          # the same doctor, the page reloaded
                if call.state == "answered":
                    who = s.get(HubStaff, call.doctor_id)
                    raise HubError(409, "call_taken", f"{who.full_name if who else 'Another doctor'} already "
                                                      "answered this call.")
                raise HubError(410, "call_over", "This call has already ended: "
                               + REASONS.get(call.end_reason, "it is over.").lower())
            self._signal(s, call.id, "spoke", "answered", {"doctor": doctor.full_name})
            audit(s, doctor.id, "answer_call", "case", call.case_id, call.id)
            s.refresh(call)
            return self._view(s, call)

    def doctor_call(self, doctor: Staff, call_id: str) -> CallView:
        """The call the doctor answered (403 for anyone else: the call page is only theirs)."""
        with self.session.begin() as s:
            call = self._call_at_my_hub(s, doctor, call_id)
            if call.doctor_id != doctor.id:
                raise HubError(403, "not_your_call", "This call was answered by another doctor.")
            return self._view(s, call)

    def ice_for(self, who: str, call_id: str) -> list[dict]:
        return self.ice.servers(f"{who}-{call_id[:8]}")

    @staticmethod
    def _call_at_my_hub(s: Session, staff: Staff, call_id: str) -> HubCall:
        call = s.get(HubCall, call_id) if len(call_id) <= 36 else None
        served = call is not None and s.scalar(select(func.count()).select_from(HubFacilityHub).where(
            HubFacilityHub.facility_id == call.facility_id, HubFacilityHub.hub_id == staff.hub_id))
        if not served:
            raise HubError(404, "no_call", "No such call at this hub.")
        return call

    @staticmethod
    def _view(s: Session, call: HubCall) -> CallView:
        case = s.get(HubCase, call.case_id)
        facility = s.get(HubFacility, call.facility_id)
        doctor = s.get(HubStaff, call.doctor_id) if call.doctor_id else None
        vitals = [r.payload or {} for r in s.scalars(select(HubRecord).where(HubRecord.parent_id == call.case_id,
                                                                              HubRecord.entity == "vitals"))]
        vitals = [v for v in vitals if v.get("status", "final") == "final"]
        latest = max(vitals, key=lambda v: v.get("recorded_at") or "", default=None)
        flags = tuple(f.get("message") or f.get("code") or "" for f in
                      ((latest or {}).get("assessment") or {}).get("flags") or ())
        return CallView(id=call.id, case_id=call.case_id, state=call.state, outcome=call.outcome,
                        end_reason=call.end_reason, facility=facility.name if facility else "", caller=call.caller,
                        patient_sex=case.patient_sex if case else "",
                        patient_age=age_text(case.patient_birth, date.today()) if case and case.patient_birth else "?",
                        complaints=case.complaints if case else "", priority=case.priority if case else 0,
                        ringing_seconds=max(0, int((utcnow() - aware(call.created_at)).total_seconds())),
                        doctor=doctor.full_name if doctor else "", vitals=(latest or {}).get("vitals"),
                        flags=tuple(f for f in flags if f))

    # --- signalling -----------------------------------------------------------------------------------------
    def post_signal(self, call_id: str, side: str, kind: str, body: dict) -> None:
        """A message of one end for the other; a hang-up ends the call for both. Messages to a call that is over
        are dropped (the other end has already been told)."""
        with self.session.begin() as s:
            call = s.get(HubCall, call_id, with_for_update=True)
            if call is None or call.state not in LIVE:
                return
            if kind == "hangup":
                if call.state == "ringing":
                    self._end(s, call, "cancelled", "cancelled")
                else:
                    self._end(s, call, "completed", f"{side}_hung_up")
                return
            if kind == "video" and side == "doctor":
                if call.state == "answered" and not call.video_seen:
                    call.video_seen = True
                return
            sent = s.scalar(select(func.count()).select_from(HubCallSignal).where(
                HubCallSignal.call_id == call_id, HubCallSignal.to_side == OTHER[side]))
            if sent >= MAX_SIGNALS:
                raise HubError(429, "too_many_signals", "Too many signalling messages in one call.")
            self._signal(s, call_id, OTHER[side], kind, body)

    def signals_for(self, call_id: str, side: str, after: int) -> list[tuple[int, str, dict]]:
        with self.session() as s:
            rows = s.execute(select(HubCallSignal.seq, HubCallSignal.kind, HubCallSignal.body).where(
                HubCallSignal.call_id == call_id, HubCallSignal.to_side == side, HubCallSignal.seq > after)
                .order_by(HubCallSignal.seq).limit(50)).all()
            return [(seq, kind, body or {}) for seq, kind, body in rows]

    def call_heartbeat(self, call_id: str, side: str) -> None:
        """This end is alive; and the call's clocks are checked (no answer in time; the other end gone quiet)."""
        with self.session.begin() as s:
            column = HubCall.spoke_seen_at if side == "spoke" else HubCall.doctor_seen_at
            s.execute(update(HubCall).where(HubCall.id == call_id, HubCall.state.in_(LIVE)).values({column: utcnow()}))
            self._sweep(s, call_id)

    def end_call(self, call_id: str, side: str) -> None:
        """An end's WebSocket closed without a hang-up (its window closed, its link dropped): the call is over."""
        with self.session.begin() as s:
            call = s.get(HubCall, call_id, with_for_update=True)
            if call is not None and call.state in LIVE:
                if call.state == "ringing":
                    self._end(s, call, "cancelled", "cancelled")
                else:
                    self._end(s, call, "failed", f"{side}_gone")

    def _sweep(self, s: Session, call_id: str | None = None) -> None:
        """Ends the calls whose time is up: ringing past its time (nobody answered), or an end silent for
        quiet_seconds (its link or its hub worker died; after a restart of the hub, every call that was on)."""
        now = utcnow()
        quiet = now - timedelta(seconds=self.quiet_seconds)
        query = select(HubCall).where(HubCall.state.in_(LIVE))
        if call_id is not None:
            query = query.where(HubCall.id == call_id)
        for call in s.scalars(query.with_for_update()).all():
            spoke_seen = aware(call.spoke_seen_at) if call.spoke_seen_at else None
            doctor_seen = aware(call.doctor_seen_at) if call.doctor_seen_at else None
            if call.state == "ringing" and aware(call.ring_until) <= now:
                self._end(s, call, "missed", "no_answer")
            elif spoke_seen is None or spoke_seen < quiet:
                self._end(s, call, "failed" if call.state == "answered" else "cancelled", "spoke_gone",
                          at=spoke_seen)
            elif call.state == "answered" and (doctor_seen is None or doctor_seen < quiet):
                self._end(s, call, "failed", "doctor_gone", at=doctor_seen)

    def _end(self, s: Session, call: HubCall, outcome: str, reason: str, at=None) -> None:
        ended = at or utcnow()
        answered = aware(call.answered_at) if call.answered_at else None
        call.state, call.outcome, call.end_reason, call.ended_at = "ended", outcome, reason, ended
        for side in ("spoke", "doctor"):
            self._signal(s, call.id, side, "ended", {"outcome": outcome, "reason": reason})
        doctor = s.get(HubStaff, call.doctor_id) if call.doctor_id else None
        record = {"id": call.id, "case_id": call.case_id, "started_at": aware(call.created_at).isoformat(),
                  "answered_at": answered.isoformat() if answered else None, "ended_at": ended.isoformat(),
                  "duration_s": max(0, int((ended - answered).total_seconds())) if answered else 0,
                  "outcome": outcome, "mode_used": ("video" if call.video_seen else "audio") if answered else "none",
                  "doctor": doctor.full_name if doctor else "",
                  "doctor_registration": doctor.registration_number if doctor else "",
                  "caller": call.caller, "end_reason": REASONS.get(reason, reason)}
        casebook.hub_create(s, call.facility_id, "call", record, self.stamp_after(s, None))
        audit(s, call.doctor_id, "call_" + outcome, "case", call.case_id, f"{call.id} {reason}")
        log.info("call %s ended: %s (%s)", call.id, outcome, reason)

    @staticmethod
    def _signal(s: Session, call_id: str, to_side: str, kind: str, body: dict) -> None:
        s.add(HubCallSignal(call_id=call_id, to_side=to_side, kind=kind, body=body, at=utcnow()))
        if s.get_bind().dialect.name == "postgresql":   # delivered at commit, to every worker listening
            s.execute(text("SELECT pg_notify(:channel, :key)"), {"channel": CHANNEL, "key": f"{call_id}:{to_side}"})

    def call_wakeup(self, call_id: str, side: str) -> "Wakeup | None":
        """On PostgreSQL, an event set when a message is written for this end (LISTEN/NOTIFY, through one listening
        connection per worker process); None on SQLite, where the end looks every POLL_SECONDS."""
        if self.engine.dialect.name != "postgresql":
            return None
        with _LISTENERS_LOCK:
            listener = self.__dict__.get("_listener")
            if listener is None:
                listener = self.__dict__["_listener"] = _Listener(
                    self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
        return listener.wakeup(f"{call_id}:{side}")


_LISTENERS_LOCK = threading.Lock()


class Wakeup:
    """One end's wake-up call: `event` is set (on the end's own asyncio loop) when a message may be waiting for it;
    `live` tells whether notifications are coming (else the end polls as on SQLite)."""

    def __init__(self, listener: "_Listener", key: str) -> None:
        self.listener, self.key = listener, key
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    @property
    def live(self) -> bool:
        return self.listener.live.is_set()

    def set(self) -> None:
        self.loop.call_soon_threadsafe(self.event.set)

    def close(self) -> None:
        self.listener.forget(self)


class _Listener:
    """A thread with one autocommit connection that LISTENs on CHANNEL while any end of this process waits, and
    wakes the ends a notification names. It stops when the last end goes, and starts again with the next; a
    dropped connection is opened again (the ends poll meanwhile, and are woken once to look)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.waiting: dict[str, set[Wakeup]] = {}
        self.lock = threading.Lock()
        self.live = threading.Event()
        self.thread: threading.Thread | None = None

    def wakeup(self, key: str) -> Wakeup:
        w = Wakeup(self, key)
        with self.lock:
            self.waiting.setdefault(key, set()).add(w)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, daemon=True, name="call-listener")
                self.thread.start()
        return w

    def forget(self, w: Wakeup) -> None:
        with self.lock:
            group = self.waiting.get(w.key)
            if group is not None:
                group.discard(w)
                if not group:
                    del self.waiting[w.key]

    def _wake(self, key: str | None) -> None:
        with self.lock:
            targets = [w for k, group in self.waiting.items() if key is None or k == key for w in group]
        for w in targets:
            try:
                w.set()
            except RuntimeError:       # its loop has closed
                pass

    def _run(self) -> None:
        import psycopg

        while True:
            with self.lock:
                if not self.waiting:
                    self.thread = None
                    return
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.live.set()
                    self._wake(None)       # anything written before the LISTEN: each end looks once
                    while True:
                        for n in conn.notifies(timeout=1.0):
                            self._wake(n.payload)
                        with self.lock:
                            if not self.waiting:
                                self.thread = None
                                return
            except Exception as exc:  # noqa: BLE001 - a listener that fails leaves the ends polling, never stuck
                log.warning("call signalling: listening for notifications failed (%s); polling meanwhile",
                            type(exc).__name__)
                time.sleep(1.0)
            finally:
                self.live.clear()
                self._wake(None)


# --- the WebSocket of one end -----------------------------------------------------------------------------------
async def relay(ws: WebSocket, hub, call_id: str, side: str) -> None:
    """Carries one end's signalling until the call ends or the end goes: what the end sends is written for the
    other end; what is written for this end is sent, in order, each with its number (`seq`); every
    HEARTBEAT_SECONDS this end's sign of life is written (and the call's clocks are checked, so a call nobody
    answers, or whose other end died, ends).

    The socket closed cleanly without a hang-up (the end's window closed) ends the call, and the other end is told
    at once. A socket that dropped (no closing handshake: a link cut, a modem's reset) leaves the call on: the end
    may open a new socket with `?after=N`, the last number it received, and carry on, its media never having
    stopped; if it does not come back within the quiet time, the call's clocks end it."""
    try:
        after = max(0, int(ws.query_params.get("after", "0")))
    except ValueError:
        after = 0
    gone = asyncio.Event()
    allowed = FROM[side]
    closed_cleanly = [False]

    async def inbound() -> None:
        try:
            while True:
                text = await ws.receive_text()
                problem = None
                try:
                    message = json.loads(text) if len(text) <= MAX_SIGNAL_BYTES else None
                except ValueError:
                    message = None
                if not isinstance(message, dict) or message.get("kind") not in allowed:
                    problem = "not a signalling message this end may send"
                else:
                    kind = message.pop("kind")
                    try:
                        await run_in_threadpool(hub.post_signal, call_id, side, kind, message)
                    except HubError as exc:
                        problem = exc.message
                if problem:
                    await ws.send_json({"kind": "error", "message": problem})
        except WebSocketDisconnect as exc:
            closed_cleanly[0] = exc.code in (1000, 1001)
        except RuntimeError:
            pass
        finally:
            gone.set()

    wake = hub.call_wakeup(call_id, side)

    async def outbound() -> bool:
        nonlocal after
        beat = 0.0
        while not gone.is_set():
            now = time.monotonic()
            if now - beat >= HEARTBEAT_SECONDS:
                await run_in_threadpool(hub.call_heartbeat, call_id, side)
                beat = now
            if wake is not None:
                wake.event.clear()       # before reading: a message written after the read wakes the next wait
            for seq, kind, body in await run_in_threadpool(hub.signals_for, call_id, side, after):
                await ws.send_json({"kind": kind, **body, "seq": seq})
                after = seq
                if kind == "ended":
                    return True
            # Woken by a notification (PostgreSQL), else a look every POLL_SECONDS; at least one heartbeat's time.
            # While the listener is not (yet, or no longer) live, the end polls but still waits on its event: the
            # listener wakes every end once when it goes live or fails, so none sleeps out a poll meanwhile.
            if wake is not None:
                timeout = (max(0.05, HEARTBEAT_SECONDS - (time.monotonic() - beat)) if wake.live
                           else POLL_SECONDS)
                waiters = [asyncio.ensure_future(gone.wait()), asyncio.ensure_future(wake.event.wait())]
                _done, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
            else:
                try:
                    await asyncio.wait_for(gone.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
        return False

    reader = asyncio.create_task(inbound())
    try:
        over = await outbound()
    except (WebSocketDisconnect, RuntimeError, OSError):
        over = False
    finally:
        reader.cancel()
        if wake is not None:
            wake.close()
    if not over and closed_cleanly[0]:
        await run_in_threadpool(hub.end_call, call_id, side)
    elif not over:
        log.info("call %s: the %s's socket dropped; the call waits for it to come back", call_id, side)
    if ws.client_state == WebSocketState.CONNECTED:
        try:
            await ws.close(1000)
        except (RuntimeError, OSError):
            pass
