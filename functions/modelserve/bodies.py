"""Turning a request into bytes: content types, body limits and time, multipart fields.

Every function reads its body through here, so limits (413), slow clients (408) and wrong
content types (415) are handled once, and refused bodies never tie up a worker.
"""

from __future__ import annotations

import io
import time

import flask
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from .errors import AppError, BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from .http import escape_for_message

_READ_CHUNK = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around an uploaded file
MAX_FORM_PARTS = 16


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
        raise _abandon_body(request, too_large(limit))
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
            raise _abandon_body(request, too_large(limit))
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


def too_large(limit: int) -> PayloadTooLarge:
    """413: the body is larger than `limit` bytes."""
    return PayloadTooLarge("too_large", f"Request body is larger than the limit of {limit} bytes.")


def _too_slow(timeout: float) -> RequestTimeout:
    return RequestTimeout("request_timeout", f"The request body took longer than {timeout:g} s "
                          "to arrive.")


def upload_bytes(request: flask.Request, field: str, max_bytes: int, timeout: float,
                 missing_message: str) -> bytes:
    """An uploaded file: multipart field `field`, or a raw body sent as image/*."""
    media_type = require_content_type(request, ("multipart/form-data", "image/"),
                                      f"multipart/form-data (a field named {field}) or image/*")
    if media_type.startswith("image/"):
        data = read_body(request, max_bytes, timeout)
    else:
        body = read_body(request, max_bytes + MULTIPART_OVERHEAD, timeout)
        data = multipart_field(body, request.mimetype_params, field)
    if len(data) > max_bytes:
        raise PayloadTooLarge("too_large", f"The image is larger than the limit of {max_bytes} "
                              "bytes.", field)
    if not data:
        raise BadRequest("missing_image", missing_message, field)
    return data


def multipart_field(body: bytes, options: dict[str, str], name: str) -> bytes:
    """One file field of a multipart body, parsed in memory: uploads never touch the disk."""
    parser = FormDataParser(stream_factory=_in_memory, max_form_parts=MAX_FORM_PARTS)
    try:
        _, _, files = parser.parse(io.BytesIO(body), "multipart/form-data", len(body), options)
    except (ValueError, RequestEntityTooLarge):
        raise BadRequest("invalid_multipart", "The multipart body is malformed.", name) from None
    part = files.get(name)
    return part.stream.read() if part is not None else b""


def _in_memory(*_: object, **__: object) -> io.BytesIO:
    return io.BytesIO()
