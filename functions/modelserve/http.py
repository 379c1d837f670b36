"""HTTP plumbing shared by both functions: request ids, JSON envelopes, body limits, CORS."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from .errors import AppError, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

REQUEST_ID_HEADER = "X-Request-Id"
# Request ids from clients end up in logs: short, and only characters that cannot forge a line.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_READ_CHUNK = 64 * 1024
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # built once
CORS_MAX_AGE_SECONDS = 3600
_JSON_CONTENT_TYPE = ("Content-Type", "application/json")


def request_id(request: flask.Request) -> str:
    """A valid X-Request-Id, else the platform's Function-Execution-Id, else a new UUID4."""
    environ = request.environ  # plain dict lookups: cheaper than the Headers view
    for key in ("HTTP_X_REQUEST_ID", "HTTP_FUNCTION_EXECUTION_ID"):
        value = environ.get(key, "")
        if value and _SAFE_REQUEST_ID.fullmatch(value):
            return value
    return str(uuid.uuid4())


def json_response(
    request_id: str, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    """A JSON response whose body starts with the request id, echoed in X-Request-Id."""
    return document_response(request_id, {"id": request_id, **body}, status, headers)


def document_response(
    request_id: str, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    """A JSON document exactly as given (no `id` key), the request id in X-Request-Id only."""
    response = flask.Response(_ENCODE(body), status=status,
                              headers=[_JSON_CONTENT_TYPE, (REQUEST_ID_HEADER, request_id)])
    if headers:
        response.headers.update(headers)
    return response


def error_response(request_id: str, error: AppError) -> flask.Response:
    """The error envelope `{"id", "errors": [{"field", "code", "message"}]}`."""
    body = {"errors": [problem.as_dict() for problem in error.problems]}
    return json_response(request_id, body, error.status, error.headers)


def require_content_type(request: flask.Request, accepted: tuple[str, ...], hint: str) -> str:
    """The media type if it starts with one of `accepted`, else 415 saying what to send."""
    # As werkzeug's request.mimetype, without building its parsed-header cache per request.
    media_type = request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if not media_type.startswith(accepted):
        got = escape_for_message(media_type) if media_type else "none"
        raise UnsupportedMediaType(
            "unsupported_media_type", f"Content-Type must be {hint}, got {got}.", "Content-Type"
        )
    return media_type


def read_body(request: flask.Request, limit: int, timeout: float) -> bytes:
    """The raw body, refusing (413) a declared or actual size above `limit` before buffering it.

    A client that takes longer than `timeout` seconds to send it, in total or between two
    packets, gets 408 instead of holding a worker thread.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _abandon_body(request, _too_large(limit))
    environ = request.environ
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(timeout)  # gunicorn makes it blocking again for the next request
    deadline = time.monotonic() + timeout
    # With a declared length the raw input is safe to read (never past Content-Length, as
    # WSGI asks); werkzeug's wrapper is only needed to bound a body of unknown length.
    stream = environ["wsgi.input"] if declared is not None else request.stream
    chunks: list[bytes] = []
    received = 0
    while True:
        # A declared length is read in one call (usually already buffered): no extra read
        # for the end of the stream.
        wanted = declared - received if declared is not None else _READ_CHUNK
        if wanted <= 0:
            break
        try:
            chunk = stream.read(min(wanted, limit + 1 - received))
        except OSError:  # socket.timeout, or the client went away
            raise _abandon_body(request, _too_slow(timeout)) from None
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
        if received > limit:
            raise _abandon_body(request, _too_large(limit))
        if time.monotonic() > deadline:
            raise _abandon_body(request, _too_slow(timeout))
    body = b"".join(chunks)
    request._cached_data = body  # functions-framework's drain (get_data) then reads nothing
    return body


def _abandon_body(request: flask.Request, error: AppError) -> AppError:
    # functions-framework drains the body after every response (request.get_data()); for a
    # body refused half-read that would buffer all of it or wait on a stalled client. Mark it
    # read (werkzeug's cache) and close the connection instead.
    request._cached_data = b""
    error.headers["Connection"] = "close"
    return error


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge("too_large", f"Request body is larger than the limit of {limit} bytes.")


def _too_slow(timeout: float) -> RequestTimeout:
    return RequestTimeout("request_timeout", f"The request body took longer than {timeout:g} s "
                          "to arrive.")


def cors_headers(request: flask.Request, allowed_origins: tuple[str, ...]) -> dict[str, str]:
    """CORS headers for a request from an allowed origin; none for any other origin."""
    origin = request.environ.get("HTTP_ORIGIN")
    if not origin or not allowed_origins:
        return {}
    if "*" in allowed_origins:
        return {"Access-Control-Allow-Origin": "*"}
    if origin in allowed_origins:
        return {"Access-Control-Allow-Origin": origin}
    return {}


def add_cors(response: flask.Response, request: flask.Request,
             allowed_origins: tuple[str, ...]) -> None:
    """Add CORS headers for an allowed origin; `Vary: Origin` joins any Vary already set."""
    if not allowed_origins:
        return
    response.headers.update(cors_headers(request, allowed_origins))
    if "*" not in allowed_origins:
        response.vary.add("Origin")  # the answer differs by origin, for caches


def preflight_headers(request: flask.Request, allowed_origins: tuple[str, ...]) -> dict[str, str]:
    """Headers answering a CORS preflight (OPTIONS) from an allowed origin."""
    headers = cors_headers(request, allowed_origins)
    if headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": f"Content-Type, {REQUEST_ID_HEADER}",
                "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
            }
        )
    return headers


def escape_for_message(value: object, limit: int = 40) -> str:
    """A bounded, printable slice of a client's value, safe to put in a message or a log."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def register_json_errors() -> None:
    """Make the framework's own errors (404 on /favicon.ico, 405, 413) JSON envelopes too.

    functions-framework imports the entry-point module inside its Flask app's context, so
    calling this from main.py reaches the app that will serve the function.
    """
    if flask.has_app_context():
        flask.current_app.register_error_handler(HTTPException, _http_exception)


def _http_exception(exc: HTTPException) -> flask.Response:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    error = AppError(code, exc.description or exc.name or "Error.")
    error.status = status
    return error_response(request_id(flask.request), error)
