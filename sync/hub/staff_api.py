"""The hub staff's JSON API under /v1/hub/: everything the doctors' console does, for another hub system to
integrate, on the same service layer (sync.hub.staff, sync.hub.clinic).

A session is a token: sent as `Authorization: Bearer <token>` by an API client, or in the console's cookie. A
request on the cookie that changes anything must carry the session's CSRF token (header X-CSRF-Token or a form's
`csrf` field); a bearer token is not sent by a browser on its own, so it needs none.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import asdict
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from sync.hub import formulary
from sync.hub.clinic import MedicineDraft, PrescriptionDraft, PrescriptionRefused
from sync.hub.errors import HubError
from sync.hub.staff import SPECIALITIES, Staff

COOKIE = "spoke_hub_session"
MAX_JSON = 64 * 1024


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignIn(_In):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class Duty(_In):
    on_duty: bool


class Question(_In):
    text: Annotated[str, Field(min_length=3, max_length=2000)]


class MedicineIn(_In):
    formulary_id: Annotated[str, Field(max_length=200)] | None = None
    name: Annotated[str, Field(max_length=200)] = ""
    dose: Annotated[str, Field(max_length=60)] = ""
    route: Annotated[str, Field(max_length=40)] = "oral"
    frequency: Annotated[str, Field(max_length=20)] = ""
    duration_days: Annotated[int, Field(ge=0, le=3650)] = 0
    instructions: Annotated[str, Field(max_length=300)] = ""
    allergy_override: Annotated[str, Field(max_length=300)] = ""


class PrescriptionIn(_In):
    diagnosis: Annotated[str, Field(max_length=1000)] = ""
    icd10_code: Annotated[str, Field(max_length=10)] = ""
    medicines: Annotated[list[MedicineIn], Field(max_length=30)] = []
    investigations: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=30)] = []
    advice: Annotated[str, Field(max_length=4000)] = ""
    follow_up: date | None = None
    referral_to: Annotated[str, Field(max_length=200)] = ""
    referral_speciality: Annotated[str, Field(max_length=60)] = ""
    referral_urgency: Literal["routine", "urgent", "emergency"] = "routine"
    referral_reason: Annotated[str, Field(max_length=1000)] = ""
    replaces: Annotated[str, Field(max_length=64)] | None = None

    def draft(self) -> PrescriptionDraft:
        return PrescriptionDraft(
            diagnosis=self.diagnosis, icd10_code=self.icd10_code,
            medicines=[MedicineDraft(**m.model_dump()) for m in self.medicines], investigations=self.investigations,
            advice=self.advice, follow_up=self.follow_up, referral_to=self.referral_to,
            referral_speciality=self.referral_speciality, referral_urgency=self.referral_urgency,
            referral_reason=self.referral_reason)


class Cancel(_In):
    reason: Annotated[str, Field(min_length=3, max_length=1000)]


class NewStaff(_In):
    username: Annotated[str, Field(max_length=64)]
    full_name: Annotated[str, Field(max_length=200)]
    password: Annotated[str, Field(max_length=200)]
    role: Literal["admin", "doctor"]
    qualification: Annotated[str, Field(max_length=200)] = ""
    registration_number: Annotated[str, Field(max_length=60)] = ""
    council: Annotated[str, Field(max_length=200)] = ""
    specialities: list[Literal[SPECIALITIES]] = []   # type: ignore[valid-type]


_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
_SHA = re.compile(r"[0-9a-f]{64}")


def token_of(request: Request) -> tuple[str | None, bool]:
    """The session token, and whether it came in the cookie (then changes need the CSRF token)."""
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip(), False
    return request.cookies.get(COOKIE), True


def router(hub) -> APIRouter:
    api = APIRouter(prefix="/v1/hub", tags=["hub staff"])

    async def body(request: Request, model: type[_In]):
        from sync.hub.app import read_body   # the hub's bounded reader

        raw = await read_body(request, MAX_JSON)
        try:
            return model.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise HubError(400, "bad_request", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None

    async def signed_in(request: Request, *, changes: bool) -> Staff:
        token, by_cookie = token_of(request)
        staff, csrf = await run_in_threadpool(hub.session_of, token)
        if changes and by_cookie:
            given = request.headers.get("x-csrf-token", "")
            if not given and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                given = (await request.form()).get("csrf", "")
            if not hmac.compare_digest(str(given).encode(), csrf.encode()):
                raise HubError(403, "csrf", "This form is out of date; reload the page and try again.")
        return staff

    def case_id_ok(case_id: str) -> str:
        if not _ID.fullmatch(case_id):
            raise HubError(404, "no_case", "No such case at this hub.")
        return case_id

    @api.post("/session")
    async def sign_in(request: Request) -> JSONResponse:
        """Sign in: the session token (for `Authorization: Bearer`) and its CSRF token (for the console's forms)."""
        data = await body(request, SignIn)
        signed = await run_in_threadpool(hub.sign_in, data.username, data.password)
        return JSONResponse({"token": signed.token, "csrf": signed.csrf, "staff": asdict(signed.staff)})

    @api.delete("/session")
    async def sign_out(request: Request) -> JSONResponse:
        token, _cookie = token_of(request)
        await run_in_threadpool(hub.sign_out, token)
        return JSONResponse({"signed_out": True})

    @api.get("/me")
    async def me(request: Request) -> JSONResponse:
        return JSONResponse(asdict(await signed_in(request, changes=False)))

    @api.post("/duty")
    async def duty(request: Request) -> JSONResponse:
        staff = await signed_in(request, changes=True)
        data = await body(request, Duty)
        return JSONResponse(asdict(await run_in_threadpool(hub.set_on_duty, staff, data.on_duty)))

    @api.get("/queue")
    async def queue(request: Request, speciality: str = "", facility: str = "") -> JSONResponse:
        """Cases waiting at this hub's facilities: red flags first, then the longest waiting."""
        staff = await signed_in(request, changes=False)
        items = await run_in_threadpool(lambda: hub.queue(staff, speciality=speciality[:60], facility_id=facility[:64]))
        return JSONResponse([asdict(i) for i in items])

    @api.get("/cases/{case_id}/view")
    async def case(case_id: str, request: Request) -> JSONResponse:
        """Everything about a case a doctor needs (the view is recorded in the hub's audit log)."""
        staff = await signed_in(request, changes=False)
        return JSONResponse(asdict(await run_in_threadpool(hub.case_view, staff, case_id_ok(case_id))))

    @api.post("/cases/{case_id}/take")
    async def take(case_id: str, request: Request) -> JSONResponse:
        staff = await signed_in(request, changes=True)
        await run_in_threadpool(hub.take, staff, case_id_ok(case_id))
        return JSONResponse({"case_id": case_id, "status": "in_consultation"})

    @api.post("/cases/{case_id}/release")
    async def release(case_id: str, request: Request) -> JSONResponse:
        staff = await signed_in(request, changes=True)
        await run_in_threadpool(hub.release, staff, case_id_ok(case_id))
        return JSONResponse({"case_id": case_id, "status": "queued"})

    @api.post("/cases/{case_id}/questions")
    async def ask(case_id: str, request: Request) -> JSONResponse:
        staff = await signed_in(request, changes=True)
        data = await body(request, Question)
        return JSONResponse(await run_in_threadpool(hub.ask, staff, case_id_ok(case_id), data.text))

    @api.post("/cases/{case_id}/prescriptions")
    async def prescribe(case_id: str, request: Request) -> JSONResponse:
        """Issue a prescription (signed, final); refused with a sentence per field the rules object to."""
        staff = await signed_in(request, changes=True)
        data = await body(request, PrescriptionIn)
        issued = await run_in_threadpool(lambda: hub.issue(staff, case_id_ok(case_id), data.draft(),
                                                           replaces=data.replaces))
        return JSONResponse(issued)

    @api.post("/prescriptions/{prescription_id}/cancel")
    async def cancel(prescription_id: str, request: Request) -> JSONResponse:
        staff = await signed_in(request, changes=True)
        data = await body(request, Cancel)
        return JSONResponse(await run_in_threadpool(hub.cancel, staff, case_id_ok(prescription_id), data.reason))

    @api.get("/formulary")
    async def search_formulary(request: Request, q: str = "") -> JSONResponse:
        await signed_in(request, changes=False)
        return JSONResponse([asdict(i) | {"generic": i.generic} for i in formulary.search(q[:100])])

    @api.get("/icd10")
    async def search_icd10(request: Request, q: str = "") -> JSONResponse:
        await signed_in(request, changes=False)
        return JSONResponse([{"code": c, "title": t} for c, t in await run_in_threadpool(formulary.icd10, q[:100])])

    @api.get("/key")
    async def key() -> JSONResponse:
        """The hub's prescription key (base64 of the raw Ed25519 public key): checks a prescription offline."""
        return JSONResponse({"key": await run_in_threadpool(hub.public_key)})

    @api.get("/files/{sha256}")
    async def file(sha256: str, request: Request) -> FileResponse:
        """A photo, recording or document of a case at this hub, for its doctors."""
        staff = await signed_in(request, changes=False)
        if not _SHA.fullmatch(sha256):
            raise HubError(404, "no_file", "No such file.")
        path, mime = await run_in_threadpool(hub.case_file, staff, sha256)
        return FileResponse(path, media_type=mime, headers={"Cache-Control": "private, max-age=3600"})

    @api.get("/staff")
    async def staff_list(request: Request) -> JSONResponse:
        """The hub's people, and who is on duty."""
        staff = await signed_in(request, changes=False)
        return JSONResponse([asdict(p) for p in await run_in_threadpool(hub.staff, staff.hub_id)])

    @api.post("/staff")
    async def add_staff(request: Request) -> JSONResponse:
        staff = await signed_in(request, changes=True)
        data = await body(request, NewStaff)
        added = await run_in_threadpool(lambda: hub.add_staff(
            staff, staff.hub_id, data.username, data.full_name, data.password, data.role, qualification=data.qualification,
            registration_number=data.registration_number, council=data.council, specialities=tuple(data.specialities)))
        return JSONResponse(asdict(added))

    @api.post("/facilities/{facility_id}/assign")
    async def assign(facility_id: str, request: Request) -> JSONResponse:
        """The administrator's hub takes on a facility: its cases come into this hub's queue."""
        staff = await signed_in(request, changes=True)
        await run_in_threadpool(hub.assign_facility, staff, case_id_ok(facility_id), staff.hub_id)
        return JSONResponse({"facility_id": facility_id, "hub_id": staff.hub_id})

    return api


def refused_response(exc: PrescriptionRefused) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message,
                         "problems": [{"field": f, "message": m} for f, m in exc.problems]}, status_code=400)
