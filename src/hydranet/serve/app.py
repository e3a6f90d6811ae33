"""The FastAPI application of ``hydranet serve``: one page and a small JSON API.

Routes (all answers JSON unless a file; errors are ``{"error": "one line"}``):

- ``GET /``: the page (``page.html``, self-contained: no CDN, no external request);
- ``GET /api/options``: weights, backends, limits and example frames on offer;
- ``POST /api/predict``: multipart form with ``file`` (or ``example`` / ``rerun``) and the
  choices ``weights``, ``backend``, ``size``, ``intrinsics`` or ``hfov``, ``depth_scale``; an
  image's result comes back at once, a video's job is polled with ``GET /api/job/{id}``;
- ``GET /api/result/{id}/pixel?x=&y=``: class and depth of a pixel in the original image's
  coordinates;
- ``GET /api/result/{id}/file/{kind}``: ``panel``, ``labels``, ``depth``, ``npy``, ``json``,
  ``ply``, ``video`` (``?download=1`` for an attachment named as ``hydranet predict`` names it).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import python_multipart
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from ..errors import HydranetError, InputError
from .service import MB, NotFound, ServeSettings, Service, UploadTooLarge

# Room for the form's other fields on top of the file itself.
FORM_SLACK = 64 * 1024
MAX_FIELDS = 32
MAX_FIELD_CHARS = 4096
# The page may only talk to this server: scripts and styles are inline, nothing else loads.
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
       "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
MEDIA_TYPES = {".png": "image/png", ".mp4": "video/mp4", ".json": "application/json",
               ".npy": "application/octet-stream", ".ply": "application/octet-stream"}


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(f"the file is larger than the {limit / MB:g} MB limit of this server "
                          "(hydranet serve --max-upload-mb)")


async def read_form(request: Request, folder: Path,
                    limit: int) -> tuple[dict[str, str], Path | None, str | None]:
    """Stream a multipart upload into ``folder``: ``(fields, saved file or None, its name)``.

    The body is parsed as it arrives and refused as soon as it passes ``limit``; parts are
    spooled only inside ``folder`` (never the system's temp folder, where Starlette's own form
    parser would put them) under generated names.
    """
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise InputError("send the file as multipart/form-data (the page does)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + FORM_SLACK:
        raise _too_large(limit)
    fields: dict[str, str] = {}
    parts: list = []

    def on_field(part) -> None:
        value = (part.value or b"").decode("utf-8", "replace")
        if len(fields) >= MAX_FIELDS or len(value) > MAX_FIELD_CHARS:
            raise InputError("too many or too long form fields")
        fields[(part.field_name or b"").decode("utf-8", "replace")] = value

    parser = python_multipart.FormParser(
        "multipart/form-data", on_field, parts.append, boundary=params[b"boundary"],
        config={"UPLOAD_DIR": str(folder), "MAX_MEMORY_FILE_SIZE": 4 * MB, "UPLOAD_DELETE_TMP": True})
    saved: Path | None = None
    filename: str | None = None
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + FORM_SLACK:
                raise _too_large(limit)
            parser.write(chunk)
        parser.finalize()
        for part in parts:
            if part.field_name != b"file" or saved is not None:
                continue
            if part.size > limit:
                raise _too_large(limit)
            filename = (part.file_name or b"").decode("utf-8", "replace")
            if part.size == 0:
                raise InputError(f"{filename or 'the upload'}: the file is empty")
            saved = folder / f"{secrets.token_hex(8)}.upload"
            part.file_object.seek(0)
            with saved.open("wb") as out:
                shutil.copyfileobj(part.file_object, out)
    except FormParserError as exc:
        if saved is not None:
            saved.unlink(missing_ok=True)
        raise InputError(f"malformed upload ({exc})") from None
    except BaseException:
        if saved is not None:
            saved.unlink(missing_ok=True)
        raise
    finally:
        for part in parts:
            part.close()  # removes its spool file
    return fields, saved, filename


def create_app(settings: ServeSettings | None = None, service: Service | None = None) -> FastAPI:
    """The application; its lifespan starts ``service`` and removes its folder at shutdown."""
    service = service or Service(settings)
    page = resources.files("hydranet.serve").joinpath("page.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    # No /docs: FastAPI's API pages load their scripts from a CDN.
    app = FastAPI(title="hydranet", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.exception_handler(UploadTooLarge)
    async def too_large(request: Request, exc: UploadTooLarge) -> JSONResponse:
        return _error(str(exc), 413)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(str(exc), 404)

    @app.exception_handler(HydranetError)
    async def user_error(request: Request, exc: HydranetError) -> JSONResponse:
        return _error(str(exc), 400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return _error(f"bad request: {problems}", 400)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": CSP,
                                           "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "no-store"})

    @app.get("/api/options")
    def options() -> dict:
        return service.options()

    @app.get("/api/examples/{example_id}.png")
    def example(example_id: str) -> FileResponse:
        try:
            return FileResponse(service.example_file(example_id), media_type="image/png")
        except InputError as exc:
            raise NotFound(str(exc)) from None

    @app.post("/api/predict")
    async def predict(request: Request) -> JSONResponse:
        fields, upload, filename = await read_form(request, service.incoming,
                                                   service.settings.max_upload_bytes)
        try:
            job = await run_in_threadpool(service.new_job, fields, upload, filename)
        finally:
            if upload is not None:
                upload.unlink(missing_ok=True)  # moved into the job's folder, or refused
        future = service.submit(job)
        if job.kind == "image":  # one image takes a second: answer with the result
            await asyncio.wrap_future(future)
            if job.status == "error":
                return JSONResponse({"error": job.message, "job": job.public()}, status_code=400)
        return JSONResponse(job.public())

    @app.get("/api/job/{job_id}")
    def job(job_id: str) -> dict:
        return service.get(job_id).public()

    @app.get("/api/result/{job_id}/pixel")
    def pixel(job_id: str, x: int, y: int) -> dict:
        return service.pixel(job_id, x, y)

    @app.get("/api/result/{job_id}/file/{kind}")
    def file(job_id: str, kind: str, download: bool = False) -> FileResponse:
        path, name = service.file(job_id, kind)
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                            filename=name,
                            content_disposition_type="attachment" if download else "inline",
                            headers={"Cache-Control": "private, max-age=3600"})

    return app
