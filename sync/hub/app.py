"""The reference hub's HTTP API (FastAPI). Bodies are gzip JSON of sync.protocol's models; every device
request is signed; every error is an ErrorBody with a 4xx status, never a 500 or a half-applied batch."""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from sync.hub.service import Device, Hub, HubError
from sync.protocol import (
    MAX_BODY_BYTES,
    MEDIA_CONTENT_TYPE,
    EnrollRequest,
    EnrollResult,
    ErrorBody,
    Health,
    Digest,
    HubChange,
    MediaStatus,
    ProtocolError,
    PullPage,
    PushBatch,
    PushResult,
    decode,
    encode,
)

log = logging.getLogger("spoke.hub")


def _error(status: int, code: str, message: str, retry_after: int | None = None,
           extra: dict[str, str] | None = None) -> JSONResponse:
    headers = ({"Retry-After": str(retry_after)} if retry_after is not None else {}) | (extra or {})
    return JSONResponse(ErrorBody(code=code, message=message).model_dump(), status_code=status, headers=headers)


def _gzip(message: BaseModel) -> Response:
    return Response(encode(message), media_type="application/json", headers={"Content-Encoding": "gzip"})


class CaseUpdate(BaseModel):
    status: str | None = None
    doctor_note: str | None = None


def app_from_env() -> FastAPI:
    """The app of one worker process of `spoke-hub serve --workers N` (schema already migrated by the parent)."""
    import os
    from pathlib import Path

    from sync.hub.service import make_hub_engine

    import platformdirs

    from sync.logsetup import configure

    log_dir = os.environ.get("SPOKE_HUB_LOG_DIR")
    configure(Path(log_dir) if log_dir else Path(platformdirs.user_data_dir("SpokeHub", "Spoke")) / "logs", "hub.log",
              stderr=True, rotate=False)
    media = os.environ.get("SPOKE_HUB_MEDIA_DIR")
    hub = Hub(make_hub_engine(os.environ["SPOKE_HUB_DB"]), media_dir=Path(media) if media else None)
    return create_app(hub, os.environ.get("SPOKE_HUB_ADMIN_TOKEN"))


def create_app(hub: Hub, admin_token: str | None = None) -> FastAPI:
    app = FastAPI(title="Spoke reference hub", version="1", description=__doc__)
    app.state.hub = hub

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.retry_after, exc.headers)

    @app.exception_handler(ProtocolError)
    async def _protocol_error(_request: Request, exc: ProtocolError) -> JSONResponse:
        return _error(400, "bad_message", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "bad_request", str(exc.errors())[:500])

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("hub error")  # the transaction was rolled back: nothing half-applied
        return _error(503, "hub_error", "The hub could not complete this request; nothing was applied. Try again later.",
                      retry_after=60)

    def _staff(request: Request) -> None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not admin_token or not hmac.compare_digest(token, admin_token):
            raise HubError(401, "not_hub_staff", "Only hub staff may act on cases and patients.")

    async def _body(request: Request) -> bytes:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HubError(413, "too_large", "The request is too large.")
        return body

    async def _device(request: Request, body: bytes) -> Device:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await _run(request, hub.authenticate, request.method, path, headers, body)

    async def _run(request: Request, fn, *args):
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(fn, *args)  # database work off the event loop

    @app.get("/v1/health", response_model=Health)
    async def health() -> Health:
        return Health()

    @app.post("/v1/enroll", response_model=EnrollResult, responses={403: {"model": ErrorBody}})
    async def enroll(request: Request) -> EnrollResult:
        req = decode(EnrollRequest, await _body(request), request.headers.get("content-encoding"))
        return await _run(request, hub.enroll, req)

    @app.post("/v1/push", response_model=PushResult, responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}})
    async def push(request: Request) -> Response:
        body = await _body(request)
        device = await _device(request, body)
        encoding = request.headers.get("content-encoding")
        batch = await _run(request, decode, PushBatch, body, encoding)   # parsing off the event loop too
        return _gzip(await _run(request, hub.push, device, batch))

    @app.get("/v1/pull", response_model=PullPage, responses={401: {"model": ErrorBody}})
    async def pull(request: Request, after: int = 0, limit: int = 500, own: bool = False) -> Response:
        if after < 0 or limit < 1:
            raise HubError(400, "bad_cursor", "The pull cursor must be 0 or more and the page size 1 or more.")
        device = await _device(request, await _body(request))
        return _gzip(await _run(request, hub.pull, device, after, limit, own))

    @app.get("/v1/digest", response_model=Digest, responses={401: {"model": ErrorBody}})
    async def digest(request: Request, cursor: int = 0) -> Response:
        """A fingerprint of what the hub holds for the device's facility, for a cheap divergence check."""
        device = await _device(request, await _body(request))
        return _gzip(await _run(request, hub.digest, device, cursor))

    @app.get("/v1/media/{sha256}/status", response_model=MediaStatus, responses={401: {"model": ErrorBody}})
    async def media_status(sha256: str, request: Request, size: int) -> Response:
        """How many bytes of this file the hub has confirmed for the device's facility: resume from there."""
        device = await _device(request, await _body(request))
        return _gzip(await _run(request, hub.media_status, device, sha256, size))

    @app.put("/v1/media/{sha256}", response_model=MediaStatus,
             responses={409: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def media_put(sha256: str, request: Request, offset: int, size: int) -> Response:
        """One chunk of a file (raw bytes), at `offset` = the bytes already confirmed; `size` is the whole file's."""
        body = await _body(request)
        device = await _device(request, body)
        return _gzip(await _run(request, hub.media_put, device, sha256, offset, size, body))

    @app.get("/v1/media/{sha256}", responses={200: {"content": {MEDIA_CONTENT_TYPE: {}}}, 404: {"model": ErrorBody}})
    async def media_get(sha256: str, request: Request) -> Response:
        """The file's bytes, for the devices of the facility that uploaded it; a Range header resumes."""
        device = await _device(request, await _body(request))
        path, _size = await _run(request, hub.media_file, device, sha256)
        return FileResponse(path, media_type=MEDIA_CONTENT_TYPE, headers={"X-Content-SHA256": sha256})

    @app.post("/v1/hub/cases/{case_id}", response_model=HubChange, responses={404: {"model": ErrorBody}})
    async def update_case(case_id: str, update: CaseUpdate, request: Request) -> HubChange:
        """The hub side acting on a case (status, doctor's note), so that tests and tools can play the doctor."""
        _staff(request)
        fields = {k: v for k, v in update.model_dump().items() if v is not None}
        if not fields:
            raise HubError(400, "empty_update", "Say what to change: status or doctor_note.")
        return await _run(request, hub.update_case, case_id, fields)

    @app.post("/v1/hub/patients/{patient_id}", response_model=HubChange, responses={404: {"model": ErrorBody}})
    async def update_patient(patient_id: str, request: Request) -> HubChange:
        """The hub side correcting a patient's demographics (merged field by field at every end)."""
        _staff(request)
        try:
            fields = json.loads(await request.body() or b"{}")
        except ValueError:
            raise HubError(400, "bad_request", "Send the fields to change as a JSON object.") from None
        if not isinstance(fields, dict) or not fields:
            raise HubError(400, "empty_update", "Send the fields to change as a JSON object.")
        return await _run(request, hub.update_patient, patient_id, fields)

    return app
