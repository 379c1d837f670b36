"""HTTP plumbing shared by every function: request ids, JSON envelopes, CORS, framework errors."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from .errors import AppError

REQUEST_ID_HEADER = "X-Request-Id"
# Request ids from clients end up in logs: short, and only characters that cannot forge a line.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
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
