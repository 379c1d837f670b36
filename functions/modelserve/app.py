"""Building functions from their declarations: an endpoint, a Flask app, an entry point.

`build_endpoint(declaration, environ)` is the factory everything goes through: main.py's
entry points (with os.environ), and the tests, which build a function in-process from a plain
mapping and call it through Flask's test client (`create_app(...).test_client()`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import flask
import functions_framework

from .config import function_target, load_settings
from .declarations import FUNCTIONS, Declaration, declaration
from .endpoint import Endpoint
from .http import register_json_errors
from .logs import configure_logging
from .tasks import task_for

EntryPoint = Callable[[flask.Request], flask.Response]
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def build_endpoint(function: Declaration, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The function's endpoint with its settings read from `environ` (default os.environ).

    ConfigError names a malformed variable. The model is not loaded here: on first use.
    """
    settings = load_settings(function, environ)
    configure_logging(settings.log_level)
    return Endpoint(task_for(function), settings)


def create_app(function: Declaration | str, environ: Mapping[str, str] | None = None
               ) -> flask.Flask:
    """A Flask app serving one function at every path, as functions-framework mounts it."""
    function = declaration(function) if isinstance(function, str) else function
    endpoint = build_endpoint(function, {} if environ is None else environ)
    app = flask.Flask(function.name)

    def view(path: str = "") -> flask.Response:
        return endpoint.handle(flask.request)

    app.add_url_rule("/", "run", view, methods=_ALL_METHODS)
    app.add_url_rule("/<path:path>", "run_path", view, methods=_ALL_METHODS)
    with app.app_context():
        register_json_errors()
    return app


def entry_point(function: Declaration | str) -> EntryPoint:
    """A Cloud Functions entry point for a declared function.

    The process's own target (FUNCTION_TARGET, which functions-framework and Cloud Run set)
    is built at import, so a malformed variable stops the instance at start with a message
    naming it. Any other entry point of the module is built only if it is ever called, so an
    instance reads and validates only its own function's variables.
    """
    function = declaration(function) if isinstance(function, str) else function
    lock = threading.Lock()
    built: list[Endpoint] = []  # lives for the instance: the endpoint, once built

    def endpoint() -> Endpoint:
        if not built:
            with lock:
                if not built:
                    register_json_errors()
                    built.append(build_endpoint(function))
        return built[0]

    if function_target() == function.name:
        endpoint()

    def handle(request: flask.Request) -> flask.Response:
        return endpoint().handle(request)

    handle.__name__ = handle.__qualname__ = function.name
    handle.__doc__ = f"{function.summary}\n\nGET / metadata, /openapi.json, /healthz liveness."
    return functions_framework.http(handle)


def entry_points(functions: tuple[Declaration, ...] = FUNCTIONS) -> dict[str, EntryPoint]:
    """One entry point per declaration, by name: what main.py exposes."""
    return {function.name: entry_point(function) for function in functions}

