"""The envelopes a function speaks beside its own API: Open Inference Protocol v2 (every
function) and BigQuery remote functions (tabular functions).

Envelopes only: each translates a request into the task's own calls (TabularTask.predict_rows,
ImageTask.classify_bytes), so validation, inference, limits, request ids and the access log
are the same code for all three. A protocol module of one task kind is imported only by a
function of that kind (predict_mpg never imports Pillow).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from ..declarations import TABULAR
from ..errors import Problem
from ..schema import MAX_PROBLEMS

OIP_PREFIX = "/v2"
_TENSOR_ADAPTERS = {"tabular": ("oip_tabular", "TabularTensors"),
                    "image": ("oip_image", "ImageTensors")}


def is_protocol_path(path: str) -> bool:
    """True for the paths the Open Inference Protocol owns: /v2 and everything under it."""
    return path == OIP_PREFIX or path.startswith(OIP_PREFIX + "/")


def open_inference(function: str, task: Any) -> Any:
    """The Open Inference Protocol for a task (protocols.oip.OpenInference).

    Called on a function's first /v2 request, so that its modules (tensor parsing, the
    protocol's routes) are not imported on a cold start that serves only the own API.
    """
    from .oip import OpenInference

    return OpenInference(function, tensor_adapter(task))


def tensor_adapter(task: Any) -> Any:
    """The Open Inference Protocol's view of a task: its tensors, metadata and infer."""
    module_name, class_name = _TENSOR_ADAPTERS[task.declaration.task]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(task)


def remote_function(task: Any) -> Any:
    """BigQuery's remote-function envelope for a tabular task; None for other kinds."""
    if task.declaration.task != TABULAR:
        return None
    from .bigquery import RemoteFunction

    return RemoteFunction(task)


def row_problems(rows: Sequence[Any], limit: int = MAX_PROBLEMS) -> list[Problem]:
    """The problems of the rows that have any, each message prefixed "Row i: " (0-based).

    `rows` are anything with `.problems` (tasks.tabular.Row); at most `limit` are listed.
    """
    problems: list[Problem] = []
    for index, row in enumerate(rows):
        for problem in row.problems:
            if len(problems) == limit:
                return problems
            problems.append(Problem(problem.field, problem.code,
                                    f"Row {index}: {problem.message}"))
    return problems


def summary(problems: Sequence[Problem], max_bytes: int, total: int | None = None) -> str:
    """The problems' messages in one line of at most `max_bytes` UTF-8 bytes."""
    total = len(problems) if total is None else total
    text, shown = "", 0
    for problem in problems:
        candidate = f"{text} {problem.message}" if text else problem.message
        if len(candidate.encode()) > max_bytes - 40:  # room for the count of the rest
            break
        text, shown = candidate, shown + 1
    if shown < total:
        rest = f"And {total - shown} more problems not listed."
        text = f"{text} {rest}" if text else rest
    return text.encode()[:max_bytes].decode(errors="ignore")
