"""The hub doctors' console: server-rendered pages under /console/ (Jinja2, one route and one template per page),
plain HTML forms that carry the session's CSRF token, on the same service layer as the JSON API (sync.hub.staff,
sync.hub.clinic). The only script refreshes the queue's table and feeds the formulary and ICD-10 pickers.

Text goes through the spoke's gettext catalog (resources/locale/<lang>/LC_MESSAGES/spoke.mo); the language is the
one a `?lang=` link chose (kept in a cookie), else the browser's Accept-Language. Times are the hub's local time.
"""

from __future__ import annotations

import gettext
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import json

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from sync.hub import formulary
from sync.hub.calls import relay
from sync.hub.clinic import FREQUENCIES, INSTRUCTIONS, ROUTES, MedicineDraft, PrescriptionDraft, PrescriptionRefused, age_text
from sync.hub.errors import HubError
from sync.hub.models import HubFacility, HubFacilityHub, HubOrg
from sync.hub.staff import SPECIALITIES, Staff
from sync.hub.staff_api import COOKIE

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOCALE_DIR = Path(os.environ.get("SPOKE_RESOURCES") or HERE.parents[1] / "resources") / "locale"
DOMAIN = "spoke"
LANGUAGE_NAMES = {"en": "English", "hi": "हिन्दी"}   # each language in its own script, for the switch
LANG_COOKIE = "spoke_hub_lang"
LOGIN_COOKIE = "spoke_hub_login"   # the sign-in form's double-submit token: there is no session yet
LOCAL_TIME = ZoneInfo("Asia/Kolkata")
REFRESH_SECONDS = 25               # the queue's table
MEDICINE_LINES = 6
MAX_FORM = 64 * 1024
OPEN_STATES = ("queued", "in_consultation", "info_requested")
# Files shown (and linked) only of types a browser renders without running anything: a spoke's SVG or HTML is
# listed by name and type, never opened in the hub's origin.
PICTURES = ("image/jpeg", "image/png", "image/webp", "image/gif")
SOUNDS = ("audio/ogg", "audio/opus", "audio/wav", "audio/x-wav", "audio/flac", "audio/mpeg", "audio/mp4", "audio/webm")
DOCUMENTS = ("application/pdf", *PICTURES)
EXTRA_FREQUENCIES = ("1-0-1", "1-1-1", "1-0-0", "0-0-1")
PAGE_HEADERS = {
    # Nothing from elsewhere: a page fetches only from this hub (a test asserts the browser never tries).
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "media-src 'self'; frame-src 'self'; object-src 'self'; connect-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",   # patient data stays out of the browser's cache
}
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
_NEXT = re.compile(r"/console/[0-9A-Za-z/_?=&.%+-]*")


# --- language -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def translation(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of `lang`; English (the source strings) when there is none."""
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang], fallback=True)


@lru_cache(maxsize=1)
def languages() -> dict[str, str]:
    """The console's languages: English (the source strings) and every language with a compiled catalog."""
    found = {"en": LANGUAGE_NAMES["en"]}
    for mo in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")):
        code = mo.parent.parent.name
        found[code] = LANGUAGE_NAMES.get(code, code)
    return found


def accepted(header: str) -> list[str]:
    """The primary language tags of an Accept-Language header, the most wanted first."""
    ranked = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.split("-")[0].lower()))
    return [tag for _q, _i, tag in sorted(ranked)]


def choose_language(request: Request) -> tuple[str, bool]:
    """(language, whether the choice is new and goes into the cookie)."""
    known = languages()
    asked = request.query_params.get("lang", "")
    if asked in known:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    kept = request.cookies.get(LANG_COOKIE, "")
    if kept in known:
        return kept, False
    for tag in accepted(request.headers.get("accept-language", "")):
        if tag in known:
            return tag, False
    return "en", False


# --- how things are shown -------------------------------------------------------------------------------------
def local_time(value: str | datetime | None) -> str:
    """An ISO date-time as the hub's local time, '01-12-2026 14:00'."""
    if not value:
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(LOCAL_TIME).strftime("%d-%m-%Y %H:%M")


def local_date(value: str | None) -> str:
    try:
        return date.fromisoformat(str(value)).strftime("%d-%m-%Y") if value else ""
    except ValueError:
        return str(value)


@lru_cache(maxsize=None)
def _static_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/console/static/{name}?v={_static_version(name)}"


def medicine_label(item: formulary.FormularyItem) -> str:
    """How a formulary medicine is shown and picked; the picker's script writes the same (console.js)."""
    return f"{item.medicine} — {item.form} {item.strength}".strip()


def formulary_by_label(text: str) -> formulary.FormularyItem | None:
    wanted = " ".join(text.split())
    if "—" not in wanted:
        return None
    return next((i for i in formulary.items() if medicine_label(i) == wanted), None)


class Texts:
    """The words of one request's language, for the templates and for the sentences made here."""

    def __init__(self, lang: str) -> None:
        t = translation(lang)
        self._, self.ngettext = t.gettext, t.ngettext

    def sex(self, value: str) -> str:
        _ = self._
        return {"female": _("Female"), "male": _("Male"), "other": _("Other")}.get(value, value)

    def priority(self, level: int) -> str:
        _ = self._
        return {3: _("EMERGENCY"), 2: _("Urgent"), 1: _("Watch")}.get(level, _("Routine"))

    def speciality(self, name: str) -> str:
        _ = self._
        return {"General medicine": _("General medicine"), "Paediatrics": _("Paediatrics"),
                "Obstetrics and gynaecology": _("Obstetrics and gynaecology"), "Dermatology": _("Dermatology"),
                "Cardiology": _("Cardiology"), "Orthopaedics": _("Orthopaedics"), "ENT": _("ENT"),
                "Ophthalmology": _("Ophthalmology"), "Psychiatry": _("Psychiatry")}.get(name, name) if name else _("Any")

    def status(self, value: str) -> str:
        _ = self._
        return {"queued": _("Waiting"), "in_consultation": _("In consultation"),
                "info_requested": _("Waiting for the spoke's answer"), "prescribed": _("Prescribed"),
                "closed": _("Closed"), "cancelled": _("Cancelled"), "issued": _("Issued")}.get(value, value)

    def waited(self, minutes: int) -> str:
        _ = self._
        if minutes < 60:
            return _("%(m)d min") % {"m": minutes}
        if minutes < 24 * 60:
            return _("%(h)d h %(m)d min") % {"h": minutes // 60, "m": minutes % 60}
        return _("%(d)d d %(h)d h") % {"d": minutes // (24 * 60), "h": minutes % (24 * 60) // 60}

    def frequencies(self) -> list[tuple[str, str]]:
        _ = self._
        meaning = {"OD": _("once a day"), "BD": _("twice a day"), "TDS": _("three times a day"),
                   "QID": _("four times a day"), "HS": _("at bedtime"), "SOS": _("when needed")}
        return [(code, meaning[code]) for code in FREQUENCIES] + [
            ("1-0-1", _("morning - noon - night: how many doses at each"))]

    def instruction(self, value: str) -> str:
        _ = self._
        return {"": _("(none)"), "before food": _("before food"), "after food": _("after food"),
                "with food": _("with food"), "empty stomach": _("empty stomach"),
                "at bedtime": _("at bedtime")}.get(value, value)

    def mode(self, mode: str) -> str:
        _ = self._
        return {"video": _("video"), "audio": _("audio"), "store_and_forward": _("store and forward")}.get(mode, mode)

    def consultation(self, kind: str, mode: str) -> str:
        _ = self._
        return f"{ {'first': _('First consultation'), 'follow_up': _('Follow-up')}.get(kind, kind)} ({self.mode(mode)})"

    def refusal(self, exc: HubError) -> str:
        """A refusal of the service, in this language where the console knows the sentence."""
        _ = self._
        known = {"bad_login": _("The user name or the password is not right."),
                 "locked": _("This account is locked after too many wrong passwords; try again in a quarter of "
                             "an hour."),
                 "csrf": _("This form is out of date; reload the page and try again."),
                 "no_case": _("No such case at this hub."),
                 "not_doctor": _("Only a doctor may do this."),
                 "not_admin": _("Only an administrator of this hub may do this."),
                 "case_finished": _("This case is not open any more."),
                 "not_correctable": _("This prescription cannot be corrected here."),
                 "session_ended": _("Your session ended; sign in again."),
                 "no_call": _("No such call at this hub."),
                 "not_your_call": _("This call was answered by another doctor."),
                 "call_over": _("This call has already ended.")}
        return known.get(exc.code, exc.message)

    def call_outcome(self, outcome: str) -> str:
        _ = self._
        return {"completed": _("call"), "missed": _("missed call"), "cancelled": _("call stopped before an answer"),
                "failed": _("call cut off")}.get(outcome, outcome)

    def call_reason(self, code: str) -> str:
        _ = self._
        return {"spoke_hung_up": _("The spoke hung up."), "doctor_hung_up": _("You hung up."),
                "no_answer": _("No doctor answered in time."), "cancelled": _("The spoke stopped calling."),
                "spoke_gone": _("The spoke's connection was lost."),
                "doctor_gone": _("Your connection to the hub was lost.")}.get(code, _("The call ended."))

    def call_words(self) -> dict:
        """What the call page's script says, in this language."""
        _ = self._
        reasons = {code: self.call_reason(code) for code in ("spoke_hung_up", "doctor_hung_up", "no_answer",
                                                            "cancelled", "spoke_gone", "doctor_gone")}
        return {"connecting": _("Connecting to the spoke..."), "live": _("In the call"),
                "reconnecting": _("The link to the hub dropped; reconnecting. The call goes on meanwhile."),
                "ended": _("The call ended."), "lost": _("The connection to the hub was lost; the call ended. "
                                                         "The case stays in the queue."),
                "audio_only": _("Weak link: video paused, the call goes on with sound only."),
                "video_back": _("The link recovered: video is back."),
                "no_camera": _("No camera or microphone could be opened here; check the browser's permission."),
                "good": _("Link: good"), "fair": _("Link: fair"), "poor": _("Link: poor"),
                "mute": _("Mute"), "unmute": _("Unmute"), "camera_off": _("Camera off"), "camera_on": _("Camera on"),
                "reasons": reasons}

    def vitals(self, values: dict) -> list[tuple[str, str]]:
        """(measure, value with its unit) of a vitals set, in a fixed order."""
        _ = self._
        rows = []
        if values.get("systolic_mmhg") is not None or values.get("diastolic_mmhg") is not None:
            rows.append((_("Blood pressure"), f"{values.get('systolic_mmhg') or '?'}/{values.get('diastolic_mmhg') or '?'} mmHg"))
        for key, label, unit in (("pulse_per_min", _("Pulse"), "/min"),
                                 ("respiratory_rate_per_min", _("Respiratory rate"), "/min"),
                                 ("temperature_c", _("Temperature"), "°C"), ("spo2_pct", _("SpO2"), "%"),
                                 ("weight_kg", _("Weight"), "kg"), ("height_cm", _("Height"), "cm")):
            if values.get(key) is not None:
                rows.append((label, f"{values[key]:g} {unit}" if isinstance(values[key], float) else f"{values[key]} {unit}"))
        if values.get("glucose_mg_dl") is not None:
            kind = {"fasting": _("fasting"), "random": _("random")}.get(values.get("glucose_kind") or "", "")
            rows.append((_("Blood glucose"), f"{values['glucose_mg_dl']} mg/dL {kind}".strip()))
        if values.get("consciousness"):
            rows.append((_("Consciousness"), {"alert": _("alert"), "confusion": _("new confusion"), "voice": _("voice"),
                                              "pain": _("pain"), "unresponsive": _("unresponsive")}
                         .get(values["consciousness"], values["consciousness"])))
        if values.get("on_supplemental_oxygen"):
            rows.append((_("Oxygen"), _("on supplemental oxygen")))
        return rows


# --- forms ---------------------------------------------------------------------------------------------------
class Form:
    """A posted urlencoded form (read by the hub's bounded reader: no multipart, no files)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.pairs if k == name), default)

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


async def read_form(request: Request) -> Form:
    from sync.hub.app import read_body   # the hub's bounded reader (sync.hub.app includes this router)

    raw = await read_body(request, MAX_FORM)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return Form([])
    try:
        return Form(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=400))
    except (UnicodeDecodeError, ValueError):
        raise HubError(400, "bad_form", "The form could not be read.") from None


def same_token(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


@dataclass
class RxForm:
    """The prescription form as typed: what comes back, with a sentence beside each field, when it is refused."""

    values: dict[str, str] = field(default_factory=dict)
    lines: list[dict[str, str]] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)   # "diagnosis", "m0".., "" for the whole form
    replaces: str = ""

    FIELDS = ("diagnosis", "icd10_code", "investigations", "advice", "follow_up", "referral_to", "referral_speciality",
              "referral_urgency", "referral_reason", "correction_reason")
    LINE = ("name", "dose", "route", "frequency", "duration_days", "instructions", "allergy_override")

    @classmethod
    def empty(cls) -> "RxForm":
        return cls({f: "" for f in cls.FIELDS} | {"referral_urgency": "routine"},
                   [cls.blank_line() for _ in range(MEDICINE_LINES)])

    @classmethod
    def blank_line(cls) -> dict[str, str]:
        return {k: "" for k in cls.LINE} | {"route": "oral"}

    @classmethod
    def posted(cls, form: Form) -> "RxForm":
        rx = cls({f: form.get(f)[:4000] for f in cls.FIELDS}, [], {}, form.get("replaces")[:64])
        for i in range(MEDICINE_LINES):
            rx.lines.append({k: form.get(f"m{i}_{k}")[:300] for k in cls.LINE})
        return rx

    @classmethod
    def correcting(cls, p: dict) -> "RxForm":
        """A form holding an issued prescription, to issue a corrected one in its place."""
        rx = cls.empty()
        referral = p.get("referral") or {}
        rx.values |= {"diagnosis": p.get("diagnosis") or "", "icd10_code": p.get("icd10_code") or "",
                      "investigations": "\n".join(p.get("investigations") or ()), "advice": p.get("advice") or "",
                      "follow_up": p.get("follow_up") or "", "referral_to": referral.get("to", ""),
                      "referral_speciality": referral.get("speciality", ""),
                      "referral_urgency": referral.get("urgency", "routine"), "referral_reason": referral.get("reason", "")}
        for i, m in enumerate((p.get("medicines") or ())[:MEDICINE_LINES]):
            item = formulary.get(m.get("formulary_id") or "") if m.get("formulary_id") else None
            rx.lines[i] = {"name": medicine_label(item) if item else m.get("name", ""), "dose": m.get("dose", ""),
                           "route": m.get("route", "oral"), "frequency": m.get("frequency", ""),
                           "duration_days": str(m.get("duration_days", "")), "instructions": m.get("instructions", ""),
                           "allergy_override": ""}
        rx.replaces = p.get("id", "")
        return rx

    def problem(self, where: str, sentence: str) -> None:
        self.problems.setdefault(where, []).append(sentence)

    def draft(self, t: Texts) -> tuple[PrescriptionDraft | None, list[int]]:
        """The draft for the service and, for each of its medicines, the form's line; None if the form itself
        holds something that is not a number or a date."""
        _ = t._
        v = self.values
        medicines, where = [], []
        for i, line in enumerate(self.lines):
            if not any(line[k].strip() for k in ("name", "dose", "frequency", "duration_days")):
                continue   # an unused line
            days = line["duration_days"].strip()
            if days and not (days.isascii() and days.isdigit() and int(days) <= 3650):
                self.problem(f"m{i}", _("The duration is a number of days."))
            item = formulary_by_label(line["name"])
            medicines.append(MedicineDraft(
                formulary_id=item.id if item else None, name="" if item else line["name"].strip(),
                dose=line["dose"].strip(), route=line["route"] if line["route"] in ROUTES else "oral",
                frequency=line["frequency"].strip(), duration_days=int(days) if days.isdigit() and len(days) < 5 else 0,
                instructions=line["instructions"] if line["instructions"] in INSTRUCTIONS else "",
                allergy_override=line["allergy_override"].strip()))
            where.append(i)
        follow_up = None
        if v["follow_up"].strip():
            try:
                follow_up = date.fromisoformat(v["follow_up"].strip())
            except ValueError:
                self.problem("follow_up", _("Give the follow-up date as YYYY-MM-DD."))
        if self.replaces and len(v["correction_reason"].strip()) < 3:
            self.problem("correction_reason", _("Say why the earlier prescription is corrected."))
        if self.problems:
            return None, where
        return PrescriptionDraft(
            diagnosis=v["diagnosis"], icd10_code=v["icd10_code"].strip(), medicines=medicines,
            investigations=[x.strip() for x in v["investigations"].splitlines() if x.strip()][:30], advice=v["advice"],
            follow_up=follow_up, referral_to=v["referral_to"], referral_speciality=v["referral_speciality"],
            referral_urgency=v["referral_urgency"] if v["referral_urgency"] in ("routine", "urgent", "emergency")
            else "routine", referral_reason=v["referral_reason"]), where

    def refused(self, problems: list[tuple[str, str]], where: list[int]) -> None:
        """Puts each of the service's sentences beside its field ('medicines.1' beside the form's line)."""
        for name, sentence in problems:
            parts = name.split(".")
            if parts[0] == "medicines" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(where):
                self.problem(f"m{where[int(parts[1])]}", sentence)
            elif parts[0] in ("diagnosis", "icd10_code", "investigations", "advice", "follow_up"):
                self.problem(parts[0], sentence)
            elif parts[0] == "referral" or parts[0].startswith("referral_"):
                self.problem("referral_to", sentence)
            else:
                self.problem("", sentence)


def staff_problems(exc: HubError) -> dict[str, list[str]]:
    """The service's "field: sentence; field: sentence" refusal of a new account, by field."""
    out: dict[str, list[str]] = {}
    for part in exc.message.split("; "):
        name, sep, sentence = part.partition(": ")
        out.setdefault(name if sep else "", []).append(sentence if sep else part)
    return out


def known_facilities(hub, hub_id: str) -> list[dict]:
    """Every facility this hub server knows, with the hub that serves it now (for the administrator's choice)."""
    with hub.session() as s:
        rows = s.execute(select(HubFacility.id, HubFacility.name, HubFacility.hwc_id, HubOrg.id, HubOrg.name)
                         .outerjoin(HubFacilityHub, HubFacilityHub.facility_id == HubFacility.id)
                         .outerjoin(HubOrg, HubOrg.id == HubFacilityHub.hub_id).order_by(HubFacility.name)).all()
    return [{"id": f, "name": n, "hwc_id": hwc, "mine": h == hub_id, "served_by": hn or ""} for f, n, hwc, h, hn in rows]


# --- the pages ------------------------------------------------------------------------------------------------
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(static=static_url, local_time=local_time, local_date=local_date)
    return env


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=request.url.scheme == "https", httponly=True,
                        samesite="strict")


def _safe_next(value: str) -> str:
    return value if _NEXT.fullmatch(value or "") and "//" not in value else "/console/"


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def router(hub) -> APIRouter:
    env = _environment()

    def render(request: Request, name: str, status: int = 200, *, staff: Staff | None = None, csrf: str = "",
               **context) -> HTMLResponse:
        lang, store = choose_language(request)
        t = Texts(lang)
        here = {k: v for k, v in request.query_params.items() if k not in ("lang", "part", "done")}
        switch = [(code, own, f"{request.url.path}?{urlencode(here | {'lang': code})}")
                  for code, own in languages().items()]
        hub_name = dict(hub.hubs()).get(staff.hub_id, "") if staff else ""
        html = env.get_template(name).render(_=t._, ngettext=t.ngettext, t=t, lang=lang, switch=switch, staff=staff,
                                             csrf=csrf, hub_name=hub_name, path=request.url.path,
                                             refresh=REFRESH_SECONDS, **context)
        response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
        if store:
            _cookie(response, request, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
        return response

    def problem_page(request: Request, exc: HubError) -> Response:
        if exc.status == 401:   # not signed in, or the session ended: to the sign-in page, then back here
            if request.query_params.get("part"):
                return Response(status_code=401)
            back = request.url.path if request.method == "GET" else "/console/"
            query = {"next": back + (f"?{request.url.query}" if request.url.query and request.method == "GET" else "")}
            if exc.code == "session_ended":
                query["ended"] = "1"
            response = _see(f"/console/login?{urlencode(query)}")
            response.delete_cookie(COOKIE, path="/")
            return response
        t = Texts(choose_language(request)[0])
        return render(request, "error.html", exc.status, message=t.refusal(exc), code=exc.code)

    class ConsoleRoute(APIRoute):
        """A refusal of the service becomes a page (or the sign-in page), not the API's JSON."""

        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def run(request: Request) -> Response:
                try:
                    return await handler(request)
                except HubError as exc:
                    return problem_page(request, exc)

            return run

    pages = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

    async def signed_in(request: Request) -> tuple[Staff, str]:
        return await run_in_threadpool(hub.session_of, request.cookies.get(COOKIE))

    async def posted(request: Request) -> tuple[Staff, str, Form]:
        """The person of a form's session, once the form's CSRF token is the session's; else 403, nothing done."""
        staff, csrf = await signed_in(request)
        form = await read_form(request)
        if not same_token(form.get("csrf"), csrf):
            raise HubError(403, "csrf", "This form is out of date; reload the page and try again.")
        return staff, csrf, form

    def call_id_ok(call_id: str) -> str:
        if not re.fullmatch(r"[0-9a-f-]{36}", call_id):
            raise HubError(404, "no_call", "No such call at this hub.")
        return call_id

    def case_id_ok(case_id: str) -> str:
        if not _ID.fullmatch(case_id):
            raise HubError(404, "no_case", "No such case at this hub.")
        return case_id

    # --- signing in and out ---------------------------------------------------------------------------------
    def login_page(request: Request, status: int = 200, message: str = "", username: str = "") -> HTMLResponse:
        token = request.cookies.get(LOGIN_COOKIE) or ""
        fresh = not re.fullmatch(r"[0-9A-Za-z_-]{32}", token)
        token = secrets.token_urlsafe(24) if fresh else token
        t = Texts(choose_language(request)[0])
        if not message and request.query_params.get("ended"):
            message = t._("Your session ended; sign in again.")
        response = render(request, "login.html", status, csrf=token, message=message, username=username,
                          next=_safe_next(request.query_params.get("next", "")))
        if fresh:
            _cookie(response, request, LOGIN_COOKIE, token)
        return response

    @pages.get("/login")
    async def login(request: Request) -> Response:
        try:
            await signed_in(request)
            return _see(_safe_next(request.query_params.get("next", "")))
        except HubError:
            return login_page(request)

    @pages.post("/login")
    async def login_post(request: Request) -> Response:
        form = await read_form(request)
        t = Texts(choose_language(request)[0])
        if not same_token(form.get("csrf"), request.cookies.get(LOGIN_COOKIE, "")):
            return login_page(request, 403, t.refusal(HubError(403, "csrf", "")))
        username, password = form.get("username")[:64], form.get("password")[:200]
        try:
            signed = await run_in_threadpool(hub.sign_in, username, password)
        except HubError as exc:
            return login_page(request, exc.status, t.refusal(exc), username)
        response = _see(_safe_next(form.get("next")))
        _cookie(response, request, COOKIE, signed.token)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @pages.post("/logout")
    async def logout(request: Request) -> Response:
        await posted(request)
        await run_in_threadpool(hub.sign_out, request.cookies.get(COOKIE))
        response = _see("/console/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    # --- the queue ------------------------------------------------------------------------------------------
    @pages.get("/")
    async def queue(request: Request, speciality: str = "", facility: str = "", part: str = "") -> Response:
        staff, csrf = await signed_in(request)
        speciality = speciality if speciality in SPECIALITIES else ""
        facility = facility[:64] if _ID.fullmatch(facility or "") else ""
        items = await run_in_threadpool(lambda: hub.queue(staff, speciality=speciality, facility_id=facility))
        back = request.url.path + (f"?{urlencode({'speciality': speciality, 'facility': facility})}"
                                   if speciality or facility else "")
        context = dict(items=items, back=back)
        if part == "table":
            return render(request, "_queue_table.html", staff=staff, csrf=csrf, **context)
        facilities = await run_in_threadpool(hub.facilities_of, staff.hub_id)
        return render(request, "queue.html", staff=staff, csrf=csrf, facilities=facilities, specialities=SPECIALITIES,
                      speciality=speciality, facility=facility, **context)

    @pages.post("/duty")
    async def duty(request: Request) -> Response:
        staff, _csrf, form = await posted(request)
        await run_in_threadpool(hub.set_on_duty, staff, form.get("on_duty") == "1")
        return _see(_safe_next(form.get("back")))

    @pages.post("/cases/{case_id}/take")
    async def take(case_id: str, request: Request) -> Response:
        staff, _csrf, _form = await posted(request)
        await run_in_threadpool(hub.take, staff, case_id_ok(case_id))
        return _see(f"/console/cases/{case_id}")

    @pages.post("/cases/{case_id}/release")
    async def release(case_id: str, request: Request) -> Response:
        staff, _csrf, _form = await posted(request)
        await run_in_threadpool(hub.release, staff, case_id_ok(case_id))
        return _see("/console/")

    # --- a case ---------------------------------------------------------------------------------------------
    async def case_page(request: Request, staff: Staff, csrf: str, case_id: str, status: int = 200, *,
                        rx: RxForm | None = None, question: str = "", question_problem: str = "",
                        cancel_problems: dict[str, str] | None = None) -> HTMLResponse:
        view = await run_in_threadpool(hub.case_view, staff, case_id_ok(case_id))
        t = Texts(choose_language(request)[0])
        by_question: dict[str, list[dict]] = {}
        for a in view.answers:
            by_question.setdefault(a.get("question_id", ""), []).append(a)
        issued = [p for p in view.prescriptions if p.get("status") == "issued"]
        correct = request.query_params.get("correct", "")
        if rx is None:
            earlier = next((p for p in issued if p.get("id") == correct), None)
            rx = RxForm.correcting(earlier) if earlier else RxForm.empty()
        status_now = view.case.get("status", "")
        is_doctor = staff.role == "doctor"
        free = not view.taken_by or view.taken_by_me
        can_prescribe = is_doctor and free and status_now in (*OPEN_STATES, "prescribed") and (not issued or rx.replaces)
        patient = view.patient
        return render(
            request, "case.html", status, staff=staff, csrf=csrf, view=view, case=view.case, patient=patient,
            allergies=list(patient.get("allergies") or ()),
            age=age_text(patient.get("birth_date", ""), date.today()) if patient.get("birth_date") else "?",
            by_question=by_question, rx=rx, can_prescribe=can_prescribe,
            can_take=is_doctor and status_now == "queued" and not view.taken_by,
            can_release=bool(view.taken_by) and (view.taken_by_me or staff.is_admin) and status_now in OPEN_STATES,
            can_ask=is_doctor and free and status_now in OPEN_STATES, question=question,
            question_problem=question_problem, cancel_problems=cancel_problems or {},
            photos=[a for a in view.attachments if a.get("kind") == "photo" and a.get("mime") in PICTURES],
            recordings=[a for a in view.attachments if a.get("kind") == "audio" and a.get("mime") in SOUNDS],
            documents=[a for a in view.attachments if a.get("kind") == "document" and a.get("mime") in DOCUMENTS],
            not_shown=[a for a in view.attachments if a.get("mime") not in (*PICTURES, *SOUNDS, *DOCUMENTS)],
            routes=ROUTES, instructions=INSTRUCTIONS, frequencies=t.frequencies(),
            frequency_codes=[*FREQUENCIES, *EXTRA_FREQUENCIES], specialities=SPECIALITIES,
            done=request.query_params.get("done", ""))

    @pages.get("/cases/{case_id}")
    async def case(case_id: str, request: Request) -> Response:
        staff, csrf = await signed_in(request)
        return await case_page(request, staff, csrf, case_id)

    @pages.post("/cases/{case_id}/ask")
    async def ask(case_id: str, request: Request) -> Response:
        staff, csrf, form = await posted(request)
        text = form.get("text")[:2000]
        try:
            await run_in_threadpool(hub.ask, staff, case_id_ok(case_id), text)
        except PrescriptionRefused:
            t = Texts(choose_language(request)[0])
            return await case_page(request, staff, csrf, case_id, 400, question=text,
                                   question_problem=t._("Write the question for the spoke (3 to 2000 characters)."))
        return _see(f"/console/cases/{case_id}?done=asked#questions")

    @pages.post("/cases/{case_id}/prescribe")
    async def prescribe(case_id: str, request: Request) -> Response:
        staff, csrf, form = await posted(request)
        case_id_ok(case_id)
        rx = RxForm.posted(form)
        t = Texts(choose_language(request)[0])
        draft, where = rx.draft(t)
        if rx.replaces:   # only an issued prescription of this very case is corrected here
            earlier = await run_in_threadpool(hub.record, "prescription", rx.replaces[:64])
            if earlier is None or (earlier.payload or {}).get("case_id") != case_id or \
                    earlier.payload.get("status") != "issued":
                raise HubError(409, "not_correctable", "This prescription cannot be corrected here.")
        if draft is not None:
            try:
                await run_in_threadpool(lambda: hub.issue(staff, case_id, draft, replaces=rx.replaces or None))
            except PrescriptionRefused as exc:
                rx.refused(exc.problems, where)
            else:
                if rx.replaces:   # the corrected one is issued: now the one it replaces is cancelled
                    await run_in_threadpool(hub.cancel, staff, rx.replaces, rx.values["correction_reason"])
                return _see(f"/console/cases/{case_id}?done=issued#prescriptions")
        return await case_page(request, staff, csrf, case_id, 400, rx=rx)

    @pages.post("/cases/{case_id}/prescriptions/{prescription_id}/cancel")
    async def cancel(case_id: str, prescription_id: str, request: Request) -> Response:
        staff, csrf, form = await posted(request)
        case_id_ok(case_id)
        reason = form.get("reason")[:1000]
        try:
            await run_in_threadpool(hub.cancel, staff, case_id_ok(prescription_id), reason)
        except PrescriptionRefused:
            t = Texts(choose_language(request)[0])
            return await case_page(request, staff, csrf, case_id, 400, cancel_problems={
                prescription_id: t._("Say why the prescription is cancelled.")})
        return _see(f"/console/cases/{case_id}?done=cancelled#prescriptions")

    # --- the administrator's page ---------------------------------------------------------------------------
    async def admin_page(request: Request, staff: Staff, csrf: str, status: int = 200, *,
                         values: dict | None = None, problems: dict | None = None) -> HTMLResponse:
        if not staff.is_admin:
            raise HubError(403, "not_admin", "Only an administrator of this hub may do this.")
        people = await run_in_threadpool(hub.staff, staff.hub_id)
        facilities = await run_in_threadpool(known_facilities, hub, staff.hub_id)
        return render(request, "admin.html", status, staff=staff, csrf=csrf, people=people, facilities=facilities,
                      specialities=SPECIALITIES, values=values or {"specialities": []}, problems=problems or {},
                      done=request.query_params.get("done", ""))

    @pages.get("/admin")
    async def admin(request: Request) -> Response:
        staff, csrf = await signed_in(request)
        return await admin_page(request, staff, csrf)

    @pages.post("/admin/doctors")
    async def add_doctor(request: Request) -> Response:
        staff, csrf, form = await posted(request)
        if not staff.is_admin:
            raise HubError(403, "not_admin", "Only an administrator of this hub may do this.")
        values = {k: form.get(k)[:200] for k in ("username", "full_name", "qualification", "registration_number",
                                                 "council")}
        values["specialities"] = [x for x in form.getlist("specialities") if x in SPECIALITIES]
        unknown = [x for x in form.getlist("specialities") if x not in SPECIALITIES]
        try:
            await run_in_threadpool(lambda: hub.add_staff(
                staff, staff.hub_id, values["username"], values["full_name"], form.get("password")[:200], "doctor",
                qualification=values["qualification"], registration_number=values["registration_number"],
                council=values["council"], specialities=tuple(values["specialities"] + unknown)))
        except HubError as exc:
            if exc.status not in (400, 409):
                raise
            return await admin_page(request, staff, csrf, exc.status, values=values, problems=staff_problems(exc))
        return _see("/console/admin?done=added")

    @pages.post("/admin/facilities")
    async def assign(request: Request) -> Response:
        staff, _csrf, form = await posted(request)
        facility_id = form.get("facility_id")
        if not _ID.fullmatch(facility_id):
            raise HubError(404, "no_facility", "No such facility on this hub.")
        await run_in_threadpool(hub.assign_facility, staff, facility_id, staff.hub_id)
        return _see("/console/admin?done=assigned")

    # --- USB bundles -------------------------------------------------------------------------------------
    @pages.get("/bundles")
    async def bundles(request: Request) -> Response:
        """Hub staff take a spoke's bundle from a drive (sent in chunks by the page's script to the same endpoint
        a relay PC uses) and download a return bundle for a PC."""
        staff, csrf = await signed_in(request)
        devices = await run_in_threadpool(hub.bundle_devices, staff.hub_id)
        return render(request, "bundles.html", staff=staff, csrf=csrf, devices=devices)

    @pages.get("/bundles/return/{device_id}")
    async def return_bundle(device_id: str, request: Request) -> Response:
        import shutil
        import uuid

        from starlette.background import BackgroundTask

        from sync.bundle import SUFFIX, BundleError

        staff, _csrf = await signed_in(request)
        if not _ID.fullmatch(device_id):
            raise HubError(404, "no_device", "No such PC at the facilities this hub serves.")
        folder = hub.media_dir / "bundles" / "out" / str(uuid.uuid4())
        folder.mkdir(parents=True)
        try:
            report = await run_in_threadpool(hub.staff_return_bundle, staff.hub_id, device_id,
                                             folder / f"return{SUFFIX}")
        except BundleError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise HubError(409, exc.code, exc.message) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        name = f"return-{device_id[:8]}-{datetime.now(LOCAL_TIME):%Y-%m-%d-%H%M}{SUFFIX}"
        return FileResponse(report.paths[0], media_type="application/octet-stream", filename=name,
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
                            background=BackgroundTask(shutil.rmtree, folder, True))

    # --- calls from the spokes (sync.hub.calls) -----------------------------------------------------------
    @pages.get("/calls/ringing")
    async def ringing(request: Request) -> Response:
        """The calls ringing for this doctor now: the part every console page asks for every two seconds."""
        staff, csrf = await signed_in(request)
        calls = await run_in_threadpool(hub.ringing_calls, staff)
        return render(request, "_ringing.html", staff=staff, csrf=csrf, calls=calls, today=date.today())

    @pages.post("/calls/{call_id}/answer")
    async def answer_call(call_id: str, request: Request) -> Response:
        staff, _csrf, _form = await posted(request)
        view = await run_in_threadpool(hub.answer_call, staff, call_id_ok(call_id))
        return _see(f"/console/calls/{view.id}")

    @pages.get("/calls/{call_id}")
    async def call_page(call_id: str, request: Request) -> Response:
        staff, csrf = await signed_in(request)
        view = await run_in_threadpool(hub.doctor_call, staff, call_id_ok(call_id))
        t = Texts(choose_language(request)[0])
        ice = json.dumps(await run_in_threadpool(hub.ice_for, "doctor", view.id))
        return render(request, "call.html", staff=staff, csrf=csrf, call=view, ice=ice, today=date.today(),
                      words=json.dumps(t.call_words()), vitals_rows=t.vitals(view.vitals or {}))

    @pages.websocket("/calls/{call_id}/ws")
    async def call_ws(ws: WebSocket, call_id: str) -> None:
        """The doctor's end of a call's signalling: their console session (the cookie), from a page of this hub
        (the Origin; a page elsewhere cannot ride the doctor's cookie), and only the doctor who answered."""
        await ws.accept()
        try:
            origin = ws.headers.get("origin", "")
            host = ws.headers.get("host", "")
            if not host or origin not in (f"http://{host}", f"https://{host}"):
                raise HubError(403, "bad_origin", "This call can only be joined from the hub's own console.")
            staff, _csrf = await run_in_threadpool(hub.session_of, ws.cookies.get(COOKIE))
            await run_in_threadpool(hub.doctor_call, staff, call_id_ok(call_id))
        except HubError as exc:
            await ws.send_json({"kind": "error", "code": exc.code, "message": exc.message})
            await ws.close(4000 + min(exc.status, 999))
            return
        await relay(ws, hub, call_id, "doctor")

    # --- the stylesheet and the script --------------------------------------------------------------------
    shipped = {p.name for p in STATIC.iterdir() if p.is_file()}
    kinds = {".css": "text/css", ".js": "text/javascript", ".txt": "text/plain"}

    @pages.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in shipped:
            raise HubError(404, "no_file", "No such file.")
        return FileResponse(STATIC / name, media_type=kinds.get(Path(name).suffix, "application/octet-stream"),
                            headers={"Cache-Control": "public, max-age=604800", "X-Content-Type-Options": "nosniff"})

    @pages.get("")
    async def root() -> Response:
        return _see("/console/")

    return pages
