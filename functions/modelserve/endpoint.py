"""One Cloud Function: routing, errors, request ids, CORS, logs and the lazily loaded model."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Generic

import flask

from .artifacts import fetch_version
from .config import Settings
from .errors import AppError, MethodNotAllowed, NotFound
from .http import (
    add_cors,
    document_response,
    error_response,
    escape_for_message,
    json_response,
    preflight_headers,
    request_id,
)
from .logs import get_logger, log_line, milliseconds, trace_fields
from .pages import page_response, wants_html
from .protocols import is_protocol_path, open_inference, remote_function
from .runtime import LazyModel
from .tasks.base import M, Task

_ALLOW_ROOT = ("GET", "POST", "OPTIONS")
_ALLOW_POST = ("POST", "OPTIONS")
_ALLOW_READ = ("GET", "OPTIONS")
_READ_PATHS = ("/healthz", "/openapi.json")


class Endpoint(Generic[M]):
    """Serves one Task as an HTTP Cloud Function."""

    def __init__(self, task: Task[M], settings: Settings) -> None:
        self.task = task
        self.settings = settings
        self.name = task.declaration.name
        self.post_paths = frozenset(("/", *task.declaration.paths))
        # Lives for the whole instance: loaded on the first request that needs it.
        self.model: LazyModel[M] = LazyModel(settings.model_uri, self._load,
                                             settings.load_retry_max_seconds)
        # The envelopes beside the own API (protocols/): /v2 for every function (`inference`,
        # built on first use), BigQuery's remote-function calls on POST / of a tabular one.
        self.remote = remote_function(task)

    # Python 3.11's cached_property locks, so concurrent first /v2 requests build it once
    # (and an adapter built twice would be harmless: it holds no state of its own).
    @functools.cached_property
    def inference(self) -> Any:
        """The Open Inference Protocol (protocols.oip.OpenInference) for this function."""
        return open_inference(self.name, self.task)

    def handle(self, request: flask.Request) -> flask.Response:
        """Route a request and always answer JSON: an answer or the error envelope."""
        started = time.perf_counter()
        rid = request_id(request)
        try:
            response = self._route(request, rid)
        except AppError as error:
            response = error_response(rid, error)
        except Exception:  # a bug: log it with its traceback, answer a bare 500 envelope
            get_logger().exception("unhandled error", extra={"fields": {"request_id": rid}})
            response = error_response(rid, AppError("internal", "Internal error; see the logs."))
            response.status_code = 500
        add_cors(response, request, self.settings.cors_origins)
        self._log_request(request, rid, response.status_code, started)
        return response

    def _route(self, request: flask.Request, rid: str) -> flask.Response:
        path, method = request.path, request.method
        if is_protocol_path(path):
            return self.inference.handle(request, rid, self.model, self.settings)
        if path == "/":
            allowed = _ALLOW_ROOT
        elif path in self.post_paths:
            allowed = _ALLOW_POST  # the lesson's /api/... paths: POST / under another name
        elif path in _READ_PATHS:
            allowed = _ALLOW_READ
        else:
            raise NotFound("not_found", f"No such path: {escape_for_message(path)}. Use POST /.")
        if method == "OPTIONS":
            return json_response(
                rid, {}, 200, preflight_headers(request, self.settings.cors_origins)
            )
        if method not in allowed and not (method == "HEAD" and "GET" in allowed):
            raise MethodNotAllowed(method, allowed)
        if path == "/healthz":
            return json_response(rid, {"status": "ok", "model": self.model.state})
        if path == "/openapi.json":
            # An OpenAPI document may not carry an `id` at its root: the header has it.
            return document_response(rid, self._document())
        if method == "POST":
            if self.remote is not None:  # BigQuery's envelope, or the own API
                return self.remote.handle(request, rid, self.model, self.settings)
            return json_response(rid, self.task.answer(request, self.model, self.settings))
        if wants_html(request):
            return page_response(self.task.page, rid)
        return json_response(rid, self._metadata(), headers={"Vary": "Accept"})

    def _document(self) -> dict[str, Any]:
        model = self.model.get()
        document = self.task.openapi(model, self.settings)
        self.inference.document(document, model, self.settings)
        if self.remote is not None:
            self.remote.document(document, model, self.settings)
        return document

    def _metadata(self) -> dict[str, Any]:
        try:
            model = self.model.get()
        except AppError:
            return {"function": self.name, "uri": self.model.uri, **self.model.state}
        manifest = model.manifest
        return {
            "function": self.name,
            "title": self.task.declaration.title,
            "summary": self.task.declaration.summary,
            "uri": self.model.uri,
            **self.model.state,
            "model": {
                **model.reference(),
                "sha256": manifest.model_sha256,
                "source": model.version_uri,
                "task": manifest.task,
            },
            "input": manifest.input,
            "output": manifest.output,
            "metrics": manifest.raw.get("metrics", {}),
        }

    def _load(self) -> M:
        started = time.perf_counter()
        artifacts = fetch_version(
            self.model.uri, self.settings.model_cache_dir, self.task.extra_files
        )
        built = time.perf_counter()
        model = self.task.build(artifacts, self.settings)
        loaded = time.perf_counter()
        self.task.warm_up(model)
        warmed = time.perf_counter()
        get_logger().info(
            "cold start: model loaded",
            extra={
                "fields": {
                    "function": self.name,
                    "uri": self.model.uri,
                    "model_version": artifacts.manifest.version,
                    "source": artifacts.version_uri,
                    "downloaded_bytes": artifacts.downloaded_bytes,
                    "cache_hit": artifacts.cache_hit,
                    **artifacts.timings_ms,
                    "fetch_ms": milliseconds(built - started),
                    "load_ms": milliseconds(loaded - built),
                    "first_inference_ms": milliseconds(warmed - loaded),
                    "total_ms": milliseconds(warmed - started),
                }
            },
        )
        return model

    def _log_request(self, request: flask.Request, rid: str, status: int, started: float) -> None:
        loaded = self.model.loaded
        fields = trace_fields(request.environ, self.settings.project_id, rid)
        path = request.path[:60]
        fields.update(
            function=self.name,
            method=request.method,
            path=path,
            status=status,
            latency_ms=milliseconds(time.perf_counter() - started),
            model_version=loaded.manifest.version if loaded else None,
        )
        severity = logging.WARNING if status >= 500 else logging.INFO
        log_line(severity, f"{request.method} {path} {status}", fields)
