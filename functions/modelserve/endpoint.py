"""One Cloud Function: routing, errors, request ids, CORS, logs and the lazily loaded model."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import flask

from .artifacts import ModelArtifacts, fetch_version
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
from .logs import get_logger, log_line, trace_fields
from .manifest import Manifest
from .pages import page_response, wants_html
from .runtime import LazyModel

M = TypeVar("M", bound="LoadedModel")

_GET = ("GET", "HEAD")
_ALLOW_ROOT = ("GET", "POST", "OPTIONS")
_ALLOW_READ = ("GET", "OPTIONS")


@dataclass(frozen=True)
class LoadedModel:
    """What every loaded model carries: its verified manifest and where it came from."""

    manifest: Manifest
    version_uri: str

    def reference(self) -> dict[str, str]:
        return {"name": self.manifest.name, "version": self.manifest.version}


class Task(Protocol[M]):
    """What differs between the two functions; everything else lives in Endpoint."""

    function_name: str
    title: str
    page: str  # the demo page in static/, answered on GET / to clients that prefer HTML

    def extra_files(self, manifest: Manifest) -> tuple[str, ...]:
        """Files beyond the model file that must be fetched and verified."""

    def build(self, artifacts: ModelArtifacts, settings: Settings) -> M:
        """Turn verified artifacts into a ready model (interpreters, schema, labels)."""

    def warm_up(self, model: M) -> None:
        """Run one inference so a model that loads but cannot run fails at load time."""

    def answer(self, request: flask.Request, model: LazyModel[M], settings: Settings) -> dict:
        """Parse, validate and predict one POST; raise AppError for anything wrong."""

    def openapi(self, model: M, settings: Settings) -> dict[str, Any]:
        """The OpenAPI document, built from the model's manifest."""


class Endpoint(Generic[M]):
    """Serves one Task as an HTTP Cloud Function."""

    def __init__(self, task: Task[M], uri: str, settings: Settings) -> None:
        self.task = task
        self.settings = settings
        # Lives for the whole instance: loaded on the first request that needs it.
        self.model: LazyModel[M] = LazyModel(uri, self._load, settings.load_retry_max_seconds)

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
        allowed = _ALLOW_ROOT if path == "/" else _ALLOW_READ
        if path not in ("/", "/healthz", "/openapi.json"):
            raise NotFound("not_found", f"No such path: {escape_for_message(path)}. Use POST /.")
        if method == "OPTIONS":
            return json_response(
                rid, {}, 200, preflight_headers(request, self.settings.cors_origins)
            )
        if method not in allowed and method not in _GET:
            raise MethodNotAllowed(method, allowed)
        if path == "/healthz":
            return json_response(rid, {"status": "ok", "model": self.model.state})
        if path == "/openapi.json":
            # An OpenAPI document may not carry an `id` at its root: the header has it.
            return document_response(rid, self.task.openapi(self.model.get(), self.settings))
        if method == "POST":
            return json_response(rid, self.task.answer(request, self.model, self.settings))
        if wants_html(request):
            return page_response(self.task.page, rid)
        return json_response(rid, self._metadata(), headers={"Vary": "Accept"})

    def _metadata(self) -> dict[str, Any]:
        try:
            model = self.model.get()
        except AppError:
            return {"function": self.task.function_name, "uri": self.model.uri, **self.model.state}
        manifest = model.manifest
        return {
            "function": self.task.function_name,
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
                    "function": self.task.function_name,
                    "uri": self.model.uri,
                    "model_version": artifacts.manifest.version,
                    "source": artifacts.version_uri,
                    "downloaded_bytes": artifacts.downloaded_bytes,
                    "cache_hit": artifacts.cache_hit,
                    **artifacts.timings_ms,
                    "fetch_ms": _ms(built - started),
                    "load_ms": _ms(loaded - built),
                    "first_inference_ms": _ms(warmed - loaded),
                    "total_ms": _ms(warmed - started),
                }
            },
        )
        return model

    def _log_request(self, request: flask.Request, rid: str, status: int, started: float) -> None:
        loaded = self.model.loaded
        fields = trace_fields(request.environ, self.settings.project_id, rid)
        path = request.path[:60]
        fields.update(
            function=self.task.function_name,
            method=request.method,
            path=path,
            status=status,
            latency_ms=_ms(time.perf_counter() - started),
            model_version=loaded.manifest.version if loaded else None,
        )
        severity = logging.WARNING if status >= 500 else logging.INFO
        log_line(severity, f"{request.method} {path} {status}", fields)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class LazyEndpoint:
    """An Endpoint built on its first request, so its task's imports (Pillow for
    classify_image) cost nothing in an instance that serves only the other function."""

    def __init__(self, build: Callable[[], Endpoint]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._endpoint: Endpoint | None = None

    def handle(self, request: flask.Request) -> flask.Response:
        endpoint = self._endpoint
        if endpoint is None:
            with self._lock:
                if self._endpoint is None:
                    self._endpoint = self._build()
                endpoint = self._endpoint
        return endpoint.handle(request)
