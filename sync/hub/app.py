"""The reference hub's HTTP API (FastAPI). Bodies are gzip JSON of sync.protocol's models; every device
request is signed; every error is an ErrorBody with a 4xx status and a reason, never a half-applied batch.

Checks that need no body come first (the signature headers' form, the declared length), and a body is read
only up to its endpoint's limit, so an unsigned or oversized request costs the hub almost nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync.hub import formulary
from sync.hub.auth import Device, signed_headers
from sync.hub.calls import IceConfig, relay
from sync.hub.console import router as console_router
from sync.hub.errors import HubError
from sync.hub.clinic import PrescriptionRefused
from sync.hub.service import Hub
from sync.hub.staff_api import refused_response, router as staff_router
from sync.wire import CHANGES_TYPE, H_WIRE, WIRE_COLUMNS, decode_changes, encode_changes
from sync.protocol import (
    H_HUB_TIME,
    H_PROTOCOL,
    ID_PATTERN,
    INT63_MAX,
    MAX_BODY_BYTES,
    MAX_CHUNK_BYTES,
    MEDIA_CONTENT_TYPE,
    BoxKeyRequest,
    BoxKeyResult,
    CallRequest,
    CallStart,
    Digest,
    EnrollRequest,
    EnrollResult,
    ErrorBody,
    Health,
    HubChange,
    MediaStatus,
    ProtocolError,
    PullPage,
    PushBatch,
    PushEnvelope,
    PushResult,
    decode,
    encode,
    push_outcome,
)

log = logging.getLogger("spoke.hub")

SMALL_BODY = 16 * 1024           # enrolment and staff requests
NO_BODY = 0                      # signed GETs sign an empty body
Count = Annotated[int, Query(ge=0, le=INT63_MAX)]
RecordId = Annotated[str, PathParam(pattern=ID_PATTERN)]


def _error(status: int, code: str, message: str, retry_after: int | None = None,
           extra: dict[str, str] | None = None) -> JSONResponse:
    headers = ({"Retry-After": str(retry_after)} if retry_after is not None else {}) | (extra or {})
    return JSONResponse(ErrorBody(code=code, message=message).model_dump(), status_code=status, headers=headers)


def _gzip(message: BaseModel) -> Response:
    return Response(encode(message), media_type="application/json", headers={"Content-Encoding": "gzip"})


class CaseUpdate(BaseModel):
    """What hub staff may change on a case: its status (only states the hub may set) and the doctor's note."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["queued", "in_consultation", "info_requested", "prescribed", "closed"] | None = None
    doctor_note: Annotated[str, Field(max_length=8000)] | None = None


def app_from_env() -> FastAPI:
    """The app of one worker process of `spoke-hub serve --workers N` (schema already migrated by the parent)."""
    import os
    from pathlib import Path

    import platformdirs

    from sync.hub.service import make_hub_engine
    from sync.logsetup import configure

    log_dir = os.environ.get("SPOKE_HUB_LOG_DIR")
    configure(Path(log_dir) if log_dir else Path(platformdirs.user_data_dir("SpokeHub", "Spoke")) / "logs", "hub.log",
              stderr=True, rotate=False)
    media = os.environ.get("SPOKE_HUB_MEDIA_DIR")
    hub = Hub(make_hub_engine(os.environ["SPOKE_HUB_DB"]), media_dir=Path(media) if media else None)
    hub.ice = IceConfig.from_env()
    return create_app(hub, os.environ.get("SPOKE_HUB_ADMIN_TOKEN"))


def _openapi_body(model: type[BaseModel]) -> dict:
    """Declares a raw-body endpoint's request body in the OpenAPI document (gzip JSON, or plain JSON)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _with_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Adds the models that raw-body endpoints read, and each entity's payload, to the OpenAPI components, so
    that another system (and a fuzzer) sees the exact shape of every message."""
    from sync.payloads import PAYLOADS

    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = generate()
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for model in [*models, *PAYLOADS.values()]:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi


def create_app(hub: Hub, admin_token: str | None = None) -> FastAPI:
    formulary.items()   # a hub without its formulary refuses to start, not to check the first prescription
    app = FastAPI(title="Spoke reference hub", version="1", description=__doc__)
    app.state.hub = hub
    token = admin_token.encode("utf-8") if admin_token else None

    @app.middleware("http")
    async def _hub_time(request: Request, call_next):
        response = await call_next(request)
        response.headers[H_HUB_TIME] = str(int(time.time() * 1000))
        response.headers[H_WIRE] = WIRE_COLUMNS   # a spoke that reads this may send and ask for columns
        return response

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.retry_after, exc.headers)

    @app.exception_handler(PrescriptionRefused)
    async def _refused(_request: Request, exc: PrescriptionRefused) -> JSONResponse:
        return refused_response(exc)

    @app.exception_handler(ProtocolError)
    async def _protocol_error(_request: Request, exc: ProtocolError) -> JSONResponse:
        return _error(400, "bad_message", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p not in ('query', 'path', 'body'))}: {e['msg']}"
                    for e in exc.errors()[:3]]
        return _error(400, "bad_request", "; ".join(problems)[:500])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 404 for an unknown path, 405 for a wrong method: the hub's error format too.
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(OperationalError)
    async def _database_down(_request: Request, _exc: OperationalError) -> JSONResponse:
        log.exception("database error")   # the transaction was rolled back: nothing half-applied
        return _error(503, "hub_unavailable", "The hub's database is not available; nothing was applied. Try again later.",
                      retry_after=60)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        log.exception("hub error")  # the transaction was rolled back: nothing half-applied
        return _error(500, "hub_error", "The hub could not complete this request; nothing was applied.")

    def _staff(request: Request) -> None:
        # Bytes, not text: a token with non-ASCII characters is refused like any wrong one, not a crash.
        given = request.headers.get("authorization", "").encode("utf-8", "surrogateescape")
        if not token or not given.startswith(b"Bearer ") or not hmac.compare_digest(given[7:], token):
            raise HubError(401, "not_hub_staff", "Only hub staff may act on cases and patients.")

    _body = read_body

    async def _device(request: Request, limit: int) -> tuple[Device, bytes]:
        """Checks the signature headers' form, then reads the body (up to `limit`), then verifies."""
        signed = signed_headers({k.lower(): v for k, v in request.headers.items()})
        body = await _body(request, limit)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        device = await run_in_threadpool(hub.authenticate, request.method, path, signed, body, _client(request))
        return device, body

    def _revision(request: Request) -> int:
        value = request.headers.get(H_PROTOCOL, "1")
        return int(value) if value.isascii() and value.isdigit() and len(value) < 4 else 1

    @app.get("/v1/health", response_model=Health)
    async def health() -> Health:
        return Health()

    @app.post("/v1/enroll", response_model=EnrollResult, openapi_extra=_openapi_body(EnrollRequest),
              responses={403: {"model": ErrorBody}, 429: {"model": ErrorBody}})
    async def enroll(request: Request) -> EnrollResult:
        req = decode(EnrollRequest, await _body(request, SMALL_BODY), request.headers.get("content-encoding"))
        result = await run_in_threadpool(hub.enroll, req, _client(request))
        if _revision(request) >= 2:   # a spoke of revision 2 reads the hub's prescription key
            result = result.model_copy(update={"hub_key": await run_in_threadpool(hub.public_key)})
        return result

    @app.post("/v1/push", response_model=PushResult, openapi_extra=_openapi_body(PushBatch),
              responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody}})
    async def push(request: Request) -> Response:
        device, body = await _device(request, MAX_BODY_BYTES)
        columns = request.headers.get("content-type", "").split(";")[0].strip() == CHANGES_TYPE
        if columns:
            batch = await run_in_threadpool(_columns_envelope, body)
        else:
            encoding = request.headers.get("content-encoding")
            batch = await run_in_threadpool(decode, PushEnvelope, body, encoding)   # parsing off the event loop too
        result = await run_in_threadpool(hub.push, device, batch)
        if columns:   # a spoke that sends columns reads the short answer
            return _gzip(push_outcome(result, [_change_id(c) for c in batch.changes]))
        if _revision(request) < 2:
            result = result.model_copy(update={"rejected": [r.model_copy(update={"code": None}) for r in result.rejected]})
        return _gzip(result)

    @app.post("/v1/box-key", response_model=BoxKeyResult, openapi_extra=_openapi_body(BoxKeyRequest),
              responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}})
    async def box_key(request: Request) -> Response:
        """Registers the device's X25519 key for USB bundles (once, by an enrolled PC) and answers the hub's."""
        device, body = await _device(request, SMALL_BODY)
        req = decode(BoxKeyRequest, body, request.headers.get("content-encoding"))
        key_id, hub_key = await run_in_threadpool(hub.register_box_key, device, req.box_key)
        return _gzip(BoxKeyResult(hub_key_id=key_id, hub_box_key=hub_key))

    # --- calls: the spoke rings, then signals over a WebSocket (sync.hub.calls) ------------------------------
    @app.post("/v1/calls", response_model=CallStart, openapi_extra=_openapi_body(CallRequest),
              responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
    async def start_call(request: Request) -> Response:
        device, body = await _device(request, SMALL_BODY)
        req = decode(CallRequest, body, request.headers.get("content-encoding"))
        started = await run_in_threadpool(hub.start_call, device, req.case_id, req.caller)
        return _gzip(CallStart(**started))

    @app.websocket("/v1/calls/{call_id}/signal")
    async def call_signal(ws: WebSocket, call_id: str) -> None:
        """The spoke's end of a call's signalling: the upgrade request is signed as any GET of the device."""
        await ws.accept()
        try:
            signed = signed_headers({k.lower(): v for k, v in ws.headers.items()})
            path = ws.url.path + (f"?{ws.url.query}" if ws.url.query else "")
            client = ws.client.host if ws.client else ""
            device = await run_in_threadpool(hub.authenticate, "GET", path, signed, b"", client)
            await run_in_threadpool(hub.device_call, device, call_id)
        except HubError as exc:
            await ws.send_json({"kind": "error", "code": exc.code, "message": exc.message})
            await ws.close(4000 + min(exc.status, 999))
            return
        await relay(ws, hub, call_id, "spoke")

    @app.get("/v1/bundles/{bundle_id}/{part}", responses={404: {"model": ErrorBody}})
    async def bundle_status(bundle_id: str, part: Annotated[int, PathParam(ge=1, le=9999)]) -> JSONResponse:
        """How much of one part of a spoke's bundle the hub has (a relay PC resumes from there); no device
        signature: the bundle is signed by its PC, and checked when its last byte is here."""
        return JSONResponse((await run_in_threadpool(hub.bundle_upload_status, bundle_id, part)).to_json())

    @app.put("/v1/bundles/{bundle_id}/{part}",
             openapi_extra={"requestBody": {"content": {MEDIA_CONTENT_TYPE: {"schema": {"type": "string",
                                                                                        "format": "binary"}}}}},
             responses={409: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def bundle_put(bundle_id: str, part: Annotated[int, PathParam(ge=1, le=9999)], request: Request,
                         offset: Count, size: Count) -> JSONResponse:
        """One chunk of a part (raw bytes) at `offset`; the first must hold the part's header. When the last part
        is complete the bundle is imported, and the answer says how it went."""
        body = await _body(request, MAX_CHUNK_BYTES)
        status = await run_in_threadpool(hub.bundle_upload_put, bundle_id, part, offset, size, body)
        return JSONResponse(status.to_json())

    @app.get("/v1/pull", response_model=PullPage, responses={
        200: {"content": {CHANGES_TYPE: {}}, "description": "a PullPage; as columns when the spoke accepts them"},
        400: {"model": ErrorBody}, 401: {"model": ErrorBody}})
    async def pull(request: Request, after: Count = 0, limit: Annotated[int, Query(ge=1, le=100_000)] = 500,
                   own: bool = False, count: bool = True) -> Response:
        """The facility's changes after `after`. `count=false` leaves out counting what remains (a spoke counts
        at its first page). With `Accept: application/vnd.spoke.changes+zstd`, the page comes as columns."""
        device, _ = await _device(request, NO_BODY)
        if CHANGES_TYPE in request.headers.get("accept", ""):
            return await run_in_threadpool(_columns_page, device, after, limit, own, count)
        return _gzip(await run_in_threadpool(hub.pull, device, after, limit, own, count))

    def _columns_page(device, after: int, limit: int, own: bool, count: bool) -> Response:
        rows, more, remaining = hub.pull_rows(device, after, limit, own, count)
        body = encode_changes(rows, protocol=1, next_cursor=rows[-1]["seq"] if rows else after, more=more,
                              remaining=remaining)
        return Response(body, media_type=CHANGES_TYPE)

    @app.get("/v1/digest", response_model=Digest, responses={401: {"model": ErrorBody}})
    async def digest(request: Request, cursor: Count = 0) -> Response:
        """A fingerprint of what the hub holds for the device's facility, for a cheap divergence check."""
        device, _ = await _device(request, NO_BODY)
        return _gzip(await run_in_threadpool(hub.digest, device, cursor))

    @app.get("/v1/media/{sha256}/status", response_model=MediaStatus, responses={401: {"model": ErrorBody}})
    async def media_status(sha256: str, request: Request, size: Count) -> Response:
        """How many bytes of this file the hub has confirmed for the device's facility: resume from there."""
        device, _ = await _device(request, NO_BODY)
        return _gzip(await run_in_threadpool(hub.media_status, device, sha256, size))

    @app.put("/v1/media/{sha256}", response_model=MediaStatus,
             openapi_extra={"requestBody": {"content": {MEDIA_CONTENT_TYPE: {"schema": {"type": "string",
                                                                                        "format": "binary"}}}}},
             responses={409: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def media_put(sha256: str, request: Request, offset: Count, size: Count) -> Response:
        """One chunk of a file (raw bytes), at `offset` = the bytes already confirmed; `size` is the whole file's."""
        device, body = await _device(request, MAX_CHUNK_BYTES)
        return _gzip(await run_in_threadpool(hub.media_put, device, sha256, offset, size, body))

    @app.get("/v1/media/{sha256}", responses={200: {"content": {MEDIA_CONTENT_TYPE: {}}}, 206: {"content": {MEDIA_CONTENT_TYPE: {}}},
                                              404: {"model": ErrorBody}, 416: {"model": ErrorBody}})
    async def media_get(sha256: str, request: Request) -> Response:
        """The file's bytes, for the devices of the facility that uploaded it; a Range header resumes."""
        device, _ = await _device(request, NO_BODY)
        path, size = await run_in_threadpool(hub.media_file, device, sha256)
        start = _range_start(request.headers.get("range"), size)
        headers = {"X-Content-SHA256": sha256, "Accept-Ranges": "bytes", "Content-Length": str(size - start)}
        if start:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        return StreamingResponse(_file_chunks(path, start), status_code=206 if start else 200,
                                 media_type=MEDIA_CONTENT_TYPE, headers=headers)

    @app.post("/v1/hub/cases/{case_id}", response_model=HubChange, responses={404: {"model": ErrorBody}},
              openapi_extra=_openapi_body(CaseUpdate))
    async def update_case(case_id: RecordId, request: Request) -> HubChange:
        """The hub side acting on a case (status, doctor's note), so that tests and tools can play the doctor."""
        _staff(request)   # before the body is read
        try:
            update = CaseUpdate.model_validate_json(await _body(request, SMALL_BODY) or b"{}")
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise HubError(400, "bad_request", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        fields = {k: v for k, v in update.model_dump().items() if v is not None}
        if not fields:
            raise HubError(400, "empty_update", "Say what to change: status or doctor_note.")
        return await run_in_threadpool(hub.update_case, case_id, fields)

    @app.post("/v1/hub/patients/{patient_id}", response_model=HubChange, responses={404: {"model": ErrorBody}},
              openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}})
    async def update_patient(patient_id: RecordId, request: Request) -> HubChange:
        """The hub side correcting a patient's demographics (merged field by field at every end)."""
        _staff(request)
        try:
            fields = json.loads(await _body(request, SMALL_BODY) or b"{}")
        except ValueError:
            raise HubError(400, "bad_request", "Send the fields to change as a JSON object.") from None
        if not isinstance(fields, dict) or not fields:
            raise HubError(400, "empty_update", "Send the fields to change as a JSON object.")
        return await run_in_threadpool(hub.update_patient, patient_id, fields)

    app.include_router(staff_router(hub))
    app.include_router(console_router(hub))
    _with_schemas(app, [EnrollRequest, PushBatch, CaseUpdate, BoxKeyRequest, CallRequest])
    return app


def _change_id(change: dict):
    import uuid

    return uuid.UUID(str(change.get("change_id")))   # readable: the hub refused the batch otherwise


def _columns_envelope(body: bytes) -> PushEnvelope:
    meta, changes = decode_changes(body)
    try:
        return PushEnvelope(protocol=meta.get("protocol", 1), batch_id=meta.get("batch_id"), changes=changes)
    except ValidationError as exc:
        raise ProtocolError(f"not a valid push ({exc.errors(include_url=False)[0]['msg']})") from None


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read only up to `limit`: a declared length above it is refused before reading, and a stream that
    goes past it is cut off there."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise HubError(400, "bad_length", "The Content-Length header is not a number.")
        if int(declared) > limit:
            raise HubError(413, "too_large", f"The request is too large (at most {limit} bytes here).")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HubError(413, "too_large", f"The request is too large (at most {limit} bytes here).")
        chunks.append(chunk)
    return b"".join(chunks)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _range_start(header: str | None, size: int) -> int:
    """The first byte of `Range: bytes=N-` (the only form a spoke sends, to resume); anything else is refused
    in the hub's error format."""
    if not header:
        return 0
    unit, _, spec = header.partition("=")
    start_text, dash, end_text = spec.strip().partition("-")
    if unit.strip() != "bytes" or not dash or end_text or not start_text.isascii() or not start_text.isdigit():
        raise HubError(416, "bad_range", "Only a range of the form 'bytes=N-' is served.",
                       headers={"Content-Range": f"bytes */{size}"})
    start = int(start_text)
    if start >= size:
        raise HubError(416, "bad_range", "The range starts beyond the end of the file.",
                       headers={"Content-Range": f"bytes */{size}"})
    return start


def _file_chunks(path, start: int, chunk: int = 256 * 1024):
    with open(path, "rb") as f:
        f.seek(start)
        while block := f.read(chunk):
            yield block
