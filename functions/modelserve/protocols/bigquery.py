"""BigQuery remote functions: {"calls": [[arg, ...], ...]} in, {"replies": [...]} out.

BigQuery POSTs to the function's URL itself, so POST / tells the envelope from the own API by
its shape: a JSON object with a `calls` key and no feature field is a remote-function call;
anything else is the own API, unchanged. Each call holds the manifest's features in order, as
separate SQL arguments, in BigQuery's JSON encoding: INT64 and NUMERIC arrive as strings
("8", "3.5"), FLOAT64 as numbers or "NaN"/"Infinity"/"-Infinity", NULL as null (a missing
value). Numeric strings become numbers, then every row goes through
TabularTask.predict_rows: the own API's validation and messages.

A bad row fails the request by default (400, `errorMessage` naming the row and field, under
1 KB: BigQuery then fails the query with it); `userDefinedContext: {"on_error": "null"}`
makes bad rows reply null instead. Bad input is never 5xx or 429 (BigQuery retries those);
an unavailable model is 503, which it retries. Replies depend only on the calls.
"""

from __future__ import annotations

import math
import re
from typing import Any

import flask

from ..bodies import read_body, require_content_type, too_large
from ..config import Settings, TabularLimits
from ..errors import AppError, BadRequest, PayloadTooLarge, Problem
from ..http import escape_for_message, json_response
from ..jsonbody import MAX_INTEGER_DIGITS, parse_json
from ..runtime import LazyModel
from ..tasks.tabular import Row, TabularModel, TabularTask
from . import row_problems, summary
from .openapi import add_remote_function

CALLS = "calls"
CONTEXT = "userDefinedContext"
ON_ERROR = "on_error"
ON_ERROR_POLICIES = ("error", "null")
CONTEXT_KEYS = (ON_ERROR,)
MAX_ERROR_MESSAGE_BYTES = 1000  # BigQuery shows errorMessage; its documentation asks < 1 KB
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MAX_NUMBER_CHARS = 100


class RemoteFunction:
    """POST / of a tabular function: BigQuery's envelope, or the task's own API."""

    def __init__(self, task: TabularTask) -> None:
        self.task = task

    def handle(self, request: flask.Request, rid: str, model: LazyModel[TabularModel],
               settings: Settings) -> flask.Response:
        """Read the body once (up to the larger limit), then answer it as what it is."""
        limits: TabularLimits = settings.limits
        require_content_type(request, ("application/json",), "application/json")
        raw = read_body(request, max(limits.max_json_bytes, limits.max_remote_json_bytes),
                        settings.body_read_timeout_seconds)
        oversize = len(raw) > limits.max_json_bytes  # only an envelope may be this large
        try:
            body = parse_json(raw)
        except AppError:
            if oversize:
                raise too_large(limits.max_json_bytes) from None
            raise
        envelope = isinstance(body, dict) and CALLS in body
        try:
            loaded = model.get()
        except AppError as error:  # a 503 for what may be BigQuery: in both shapes
            if envelope:
                return error_response(rid, error)
            raise
        if not envelope or loaded.schema.name_set.intersection(body):  # the own API's
            if oversize:
                raise too_large(limits.max_json_bytes)
            return json_response(rid, self.task.answer_body(body, loaded, limits))
        try:
            return json_response(rid, {"replies": self.replies(body, loaded, limits)})
        except AppError as error:
            return error_response(rid, error)

    def document(self, document: dict[str, Any], model: TabularModel,
                 settings: Settings) -> None:
        """Add the envelope to POST / in the function's OpenAPI document."""
        add_remote_function(document, self.task.feature_schemas(model, settings),
                            settings.limits.max_remote_rows)

    def replies(self, envelope: dict[str, Any], model: TabularModel,
                limits: TabularLimits) -> list[float | None]:
        """One reply per call, in order; AppError for a malformed envelope or a bad row."""
        on_error = _on_error(envelope.get(CONTEXT))
        calls = envelope[CALLS]
        if not isinstance(calls, list):
            raise BadRequest("wrong_type", "Wrong type: calls must be an array of argument "
                             "arrays.", CALLS)
        if len(calls) > limits.max_remote_rows:
            raise PayloadTooLarge("too_many_calls", f"A request may hold at most "
                                  f"{limits.max_remote_rows} calls, got {len(calls)}: lower "
                                  "the remote function's max_batching_rows.", CALLS)
        names = model.schema.names
        records: list[dict[str, Any]] = []
        arity: dict[int, Problem] = {}
        for index, call in enumerate(calls):
            if isinstance(call, list) and len(call) == len(names):
                records.append({name: number(value) for name, value in zip(names, call,
                                                                           strict=True)
                                if value is not None})
            else:
                arity[index] = _wrong_arity(call, names)
                records.append({})
        rows = self.task.predict_rows(model, records, limits)
        rows = [Row(None, [arity[i]], []) if i in arity else row for i, row in enumerate(rows)]
        if on_error == "null":
            return [row.value for row in rows]
        problems = row_problems(rows)
        if problems:
            hidden = sum(len(row.problems) for row in rows) - len(problems)
            if hidden:
                problems.append(Problem(None, "too_many_problems",
                                        f"And {hidden} more problems not listed."))
            raise BadRequest.of(problems)
        return [row.value for row in rows]


def number(value: Any) -> Any:
    """A BigQuery argument as a number when it is a numeric string; anything else as given.

    "8" -> 8, "3.5" -> 3.5, "NaN"/"Infinity"/"-Infinity" -> float; a string that is no
    number stays a string, which validation refuses naming the field.
    """
    if type(value) is not str or len(value) > _MAX_NUMBER_CHARS:
        return value
    if _INTEGER.fullmatch(value):
        if len(value.lstrip("+-")) > MAX_INTEGER_DIGITS:  # as the JSON parser bounds them
            return -math.inf if value.startswith("-") else math.inf
        return int(value)
    if value in _SPECIAL:
        return _SPECIAL[value]
    if _DECIMAL.fullmatch(value):
        return float(value)
    return value


def _on_error(context: Any) -> str:
    if context is None:
        return ON_ERROR_POLICIES[0]
    if not isinstance(context, dict):
        raise BadRequest("wrong_type", f"Wrong type: {CONTEXT} must be an object.", CONTEXT)
    for key in context:
        if key not in CONTEXT_KEYS:
            shown = escape_for_message(key)
            raise BadRequest("unexpected", f"Unexpected field: {CONTEXT}.{shown}. Known: "
                             f"{', '.join(CONTEXT_KEYS)}.", f"{CONTEXT}.{shown}")
    policy = context.get(ON_ERROR, ON_ERROR_POLICIES[0])
    if policy not in ON_ERROR_POLICIES:
        raise BadRequest("invalid_option", f"{CONTEXT}.{ON_ERROR} must be "
                         f"{' or '.join(ON_ERROR_POLICIES)}, got {escape_for_message(policy)}.",
                         f"{CONTEXT}.{ON_ERROR}")
    return policy


def _wrong_arity(call: Any, names: tuple[str, ...]) -> Problem:
    got = str(len(call)) if isinstance(call, list) else "no array"
    return Problem(None, "wrong_arity", f"Wrong arity: each call takes {len(names)} arguments "
                   f"({', '.join(names)}), got {got}.")


def error_response(rid: str, error: AppError) -> flask.Response:
    """BigQuery's error shape, {"errorMessage"} under 1 KB, beside the own {"errors": [...]}."""
    message = summary(error.problems, MAX_ERROR_MESSAGE_BYTES)
    body = {"errorMessage": message, "errors": [p.as_dict() for p in error.problems]}
    return json_response(rid, body, error.status, error.headers)
