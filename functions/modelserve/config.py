"""Configuration from environment variables: the only module that reads os.environ.

Each function reads its own model variable (from its declaration), the variables every
function reads (COMMON_VARIABLES) and those of its task kind (TASK_VARIABLES), and nothing
else: predict_mpg never validates classify_image's limits.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .declarations import FUNCTIONS, IMAGE, TABULAR, Declaration

SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the functions/ folder
LOCAL_BUCKET = SOURCE_ROOT.parent / "model_bucket"

OUT_OF_RANGE_POLICIES = ("reject", "warn")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FUNCTION_TARGET = "FUNCTION_TARGET"  # set by functions-framework (and Cloud Run) to the target


class ConfigError(ValueError):
    """An environment variable is malformed; the message names it and says what is allowed."""


@dataclass(frozen=True)
class Variable:
    """One environment variable the functions read, with its default and meaning."""

    name: str
    default: str
    description: str


COMMON_VARIABLES: tuple[Variable, ...] = (
    Variable("MODEL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "model-cache"),
             "where downloaded model versions are kept (versions are immutable)"),
    Variable("BODY_READ_TIMEOUT_SECONDS", "10",
             "longest a client may take to send a request body (408 after)"),
    Variable("CORS_ORIGINS", "", "comma-separated origins allowed to call from a browser "
             "(`*` for any)"),
    Variable("LOG_LEVEL", "INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`"),
    Variable("INTERPRETER_POOL_SIZE", "0",
             "LiteRT interpreters per model for concurrent requests (`0`: one per usable CPU)"),
    Variable("INTERPRETER_THREADS", "1", "threads each LiteRT interpreter may use"),
    Variable("LOAD_RETRY_MAX_SECONDS", "30",
             "longest wait between two attempts to load a model that failed to load"),
    Variable("GOOGLE_CLOUD_PROJECT", "", "project id, for linking log lines to Cloud Trace"),
)

TASK_VARIABLES: dict[str, tuple[Variable, ...]] = {
    TABULAR: (
        Variable("MAX_JSON_BYTES", "65536", "largest JSON body a tabular function accepts "
                 "(413 above)"),
        Variable("MAX_BATCH_SIZE", "256", "most instances in one batch of a tabular function, "
                 "and most rows in one Open Inference Protocol infer request (413 above)"),
        Variable("MAX_REMOTE_ROWS", "1000", "most calls (rows) in one BigQuery remote-function "
                 "request (413 above): set the remote function's `max_batching_rows` at or "
                 "below it (500 recommended, `benchmarks/BIGQUERY.md`)"),
        Variable("MAX_REMOTE_JSON_BYTES", "1048576", "largest BigQuery remote-function body on "
                 "`POST /` (413 above; 1,000 seven-argument calls take ~46 kB); every other "
                 "JSON body keeps `MAX_JSON_BYTES`"),
        Variable("OUT_OF_RANGE", "reject", "`reject`: values outside the training range give "
                 "400 (the lesson); `warn`: predict and list a warning"),
    ),
    IMAGE: (
        Variable("MAX_IMAGE_BYTES", "10485760", "largest upload an image function accepts "
                 "(413 above)"),
        Variable("MAX_IMAGE_PIXELS", "12000000", "most pixels an upload may decode to (413 "
                 "above); JPEG decodes at a reduced scale first, so large photos pass; a WebP "
                 "pixel counts double (libwebp's decoder needs twice the memory). Sized so a "
                 "worst-case upload stays within classify_image's 250 MB"),
    ),
}


@dataclass(frozen=True)
class TabularLimits:
    max_json_bytes: int
    max_batch_size: int
    out_of_range: str
    max_remote_rows: int
    max_remote_json_bytes: int


@dataclass(frozen=True)
class ImageLimits:
    max_image_bytes: int
    max_image_pixels: int


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one function instance."""

    function: str
    model_uri: str
    model_cache_dir: Path
    body_read_timeout_seconds: float
    cors_origins: tuple[str, ...]
    log_level: str
    interpreter_pool_size: int
    interpreter_threads: int
    load_retry_max_seconds: float
    project_id: str
    limits: Any  # TabularLimits or ImageLimits, by the declaration's task


def model_variable(function: Declaration) -> Variable:
    """The variable naming a function's model, defaulting to its folder in model_bucket/."""
    return Variable(function.model_variable, str(LOCAL_BUCKET / function.model_folder),
                    f"{function.name}'s model: local path, `file://` or `gs://bucket/path` (model "
                    "root: `LATEST` decides; version folder: pinned)")


def variables_for(function: Declaration) -> tuple[Variable, ...]:
    """Every variable `function` reads, with its defaults (the declaration's limits applied)."""
    task_variables = tuple(
        Variable(v.name, function.limits.get(v.name, v.default), v.description)
        for v in TASK_VARIABLES[function.task]
    )
    return (model_variable(function), *task_variables, *COMMON_VARIABLES)


def all_variables(functions: tuple[Declaration, ...] = FUNCTIONS) -> tuple[Variable, ...]:
    """Every variable any declared function reads, once each (the README's table)."""
    seen: dict[str, Variable] = {}
    for function in functions:
        for variable in variables_for(function):
            seen.setdefault(variable.name, variable)
    return tuple(seen.values())


def function_target(environ: Mapping[str, str] | None = None) -> str:
    """The entry point this process serves ('' when unknown, e.g. imported by a tool)."""
    env = os.environ if environ is None else environ
    return env.get(FUNCTION_TARGET, "")


def load_settings(function: Declaration, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate `function`'s variables; ConfigError naming the first bad one."""
    env = os.environ if environ is None else environ
    defaults = {variable.name: variable.default for variable in variables_for(function)}

    def raw(name: str) -> str:
        value = env.get(name, "").strip()
        return value if value else defaults[name]

    def parsed(name: str, parse: Callable[[str], Any], expected: str) -> Any:
        value = raw(name)
        try:
            return parse(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not valid: expected {expected}.") from None

    positive = (_positive_int, "a whole number above 0")
    if function.task == TABULAR:
        limits: Any = TabularLimits(
            max_json_bytes=parsed("MAX_JSON_BYTES", *positive),
            max_batch_size=parsed("MAX_BATCH_SIZE", *positive),
            out_of_range=parsed("OUT_OF_RANGE", _choice(OUT_OF_RANGE_POLICIES),
                                " or ".join(OUT_OF_RANGE_POLICIES)),
            max_remote_rows=parsed("MAX_REMOTE_ROWS", *positive),
            max_remote_json_bytes=parsed("MAX_REMOTE_JSON_BYTES", *positive),
        )
    else:
        limits = ImageLimits(max_image_bytes=parsed("MAX_IMAGE_BYTES", *positive),
                             max_image_pixels=parsed("MAX_IMAGE_PIXELS", *positive))
    return Settings(
        function=function.name,
        model_uri=parsed(function.model_variable, _model_uri,
                         "a path, file:// or gs://bucket/path"),
        model_cache_dir=Path(raw("MODEL_CACHE_DIR")),
        body_read_timeout_seconds=parsed("BODY_READ_TIMEOUT_SECONDS", _positive_float,
                                         "a number of seconds above 0"),
        cors_origins=tuple(o.strip() for o in raw("CORS_ORIGINS").split(",") if o.strip()),
        log_level=parsed("LOG_LEVEL", _choice(LOG_LEVELS, upper=True), ", ".join(LOG_LEVELS)),
        interpreter_pool_size=parsed("INTERPRETER_POOL_SIZE", _pool_size, "0 or a whole number"),
        interpreter_threads=parsed("INTERPRETER_THREADS", *positive),
        load_retry_max_seconds=parsed("LOAD_RETRY_MAX_SECONDS", _positive_float,
                                      "a number of seconds above 0"),
        project_id=raw("GOOGLE_CLOUD_PROJECT"),
        limits=limits,
    )


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError(value)
    return number


def _pool_size(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number or usable_cpus()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not all the host's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _choice(allowed: tuple[str, ...], upper: bool = False) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise ValueError(value)
        return value

    return parse


def _model_uri(value: str) -> str:
    if value.startswith("gs://"):
        bucket, _, _ = value[len("gs://") :].partition("/")
        if not bucket:
            raise ValueError(value)
    elif "://" in value and not value.startswith("file://"):
        raise ValueError(value)
    return value.rstrip("/")


def configuration_table(functions: tuple[Declaration, ...] = FUNCTIONS) -> str:
    """The README's configuration table (Markdown), one row per variable, from the declarations."""
    readers: dict[str, list[str]] = {}
    for function in functions:
        for variable in variables_for(function):
            readers.setdefault(variable.name, []).append(function.name)
    everyone = [function.name for function in functions]
    rows = ["| variable | default | read by | meaning |", "| --- | --- | --- | --- |"]
    for variable in all_variables(functions):
        names = readers[variable.name]
        read_by = "every function" if names == everyone else ", ".join(names)
        rows.append(f"| `{variable.name}` | {_shown_default(variable.default)} | {read_by} | "
                    f"{variable.description} |")
    return "\n".join(rows)


def _shown_default(default: str) -> str:
    """A default as the README shows it: paths relative to the checkout, the temp folder as /tmp."""
    if not default:
        return "empty"
    for root, shown in ((str(LOCAL_BUCKET), "model_bucket"), (tempfile.gettempdir(), "/tmp")):
        if default.startswith(root + os.sep):
            default = shown + default[len(root):]
    return f"`{default}`"


if __name__ == "__main__":  # python -m modelserve.config: print the README's table
    print(configuration_table())
