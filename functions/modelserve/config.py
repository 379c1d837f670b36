"""Configuration from environment variables: the only module that reads os.environ."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the functions/ folder
_DEFAULT_BUCKET = SOURCE_ROOT.parent / "model_bucket"

OUT_OF_RANGE_POLICIES = ("reject", "warn")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """An environment variable is malformed; the message names it and says what is allowed."""


@dataclass(frozen=True)
class Variable:
    """One environment variable the functions read, with its default and meaning."""

    name: str
    default: str
    description: str


# Every environment variable the package reads. Terraform's checks and the README's table use it.
VARIABLES: tuple[Variable, ...] = (
    Variable(
        "MPG_MODEL_URI",
        str(_DEFAULT_BUCKET / "mpg"),
        "predict_mpg model: local path, file:// or gs://bucket/path (model root or version)",
    ),
    Variable(
        "IMAGE_MODEL_URI",
        str(_DEFAULT_BUCKET / "image"),
        "classify_image model: local path, file:// or gs://bucket/path",
    ),
    Variable(
        "MODEL_CACHE_DIR",
        str(Path(tempfile.gettempdir()) / "model-cache"),
        "where downloaded model versions are kept (versions are immutable)",
    ),
    Variable("MAX_JSON_BYTES", "65536", "largest JSON body accepted by predict_mpg (413 above)"),
    Variable("MAX_BATCH_SIZE", "256", "most instances in one predict_mpg batch"),
    Variable(
        "MAX_IMAGE_BYTES", "10485760", "largest upload accepted by classify_image (413 above)"
    ),
    Variable("MAX_IMAGE_PIXELS", "12000000",
             "most pixels an upload may decode to (JPEG: after scaled decoding); 413 above"),
    Variable(
        "BODY_READ_TIMEOUT_SECONDS",
        "10",
        "longest a client may take to send a request body (408 after)",
    ),
    Variable(
        "OUT_OF_RANGE",
        "reject",
        "reject: values outside the training range give 400; warn: predict and add a warning",
    ),
    Variable(
        "CORS_ORIGINS", "", "comma-separated origins allowed to call from a browser ('*' any)"
    ),
    Variable("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Variable(
        "INTERPRETER_POOL_SIZE",
        "0",
        "LiteRT interpreters per model for concurrent requests (0: one per CPU)",
    ),
    Variable("INTERPRETER_THREADS", "1", "threads each LiteRT interpreter may use"),
    Variable(
        "LOAD_RETRY_MAX_SECONDS",
        "30",
        "longest wait between two attempts to load a model that failed to load",
    ),
    Variable("GOOGLE_CLOUD_PROJECT", "", "project id, for linking log lines to Cloud Trace"),
)

_BY_NAME = {variable.name: variable for variable in VARIABLES}


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one function instance."""

    mpg_model_uri: str
    image_model_uri: str
    model_cache_dir: Path
    max_json_bytes: int
    max_batch_size: int
    max_image_bytes: int
    max_image_pixels: int
    body_read_timeout_seconds: float
    out_of_range: str
    cors_origins: tuple[str, ...]
    log_level: str
    interpreter_pool_size: int
    interpreter_threads: int
    load_retry_max_seconds: float
    project_id: str


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every variable; raise ConfigError naming the first bad one."""
    env = os.environ if environ is None else environ

    def raw(name: str) -> str:
        value = env.get(name, "").strip()
        return value if value else _BY_NAME[name].default

    def parsed(name: str, parse: Callable[[str], Any], expected: str) -> Any:
        value = raw(name)
        try:
            return parse(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not valid: expected {expected}.") from None

    return Settings(
        mpg_model_uri=parsed("MPG_MODEL_URI", _model_uri, "a path, file:// or gs://bucket/path"),
        image_model_uri=parsed(
            "IMAGE_MODEL_URI", _model_uri, "a path, file:// or gs://bucket/path"
        ),
        model_cache_dir=Path(raw("MODEL_CACHE_DIR")),
        max_json_bytes=parsed("MAX_JSON_BYTES", _positive_int, "a whole number above 0"),
        max_batch_size=parsed("MAX_BATCH_SIZE", _positive_int, "a whole number above 0"),
        max_image_bytes=parsed("MAX_IMAGE_BYTES", _positive_int, "a whole number above 0"),
        max_image_pixels=parsed("MAX_IMAGE_PIXELS", _positive_int, "a whole number above 0"),
        body_read_timeout_seconds=parsed("BODY_READ_TIMEOUT_SECONDS", _positive_float,
                                         "a number of seconds above 0"),
        out_of_range=parsed(
            "OUT_OF_RANGE", _choice(OUT_OF_RANGE_POLICIES), " or ".join(OUT_OF_RANGE_POLICIES)
        ),
        cors_origins=tuple(o.strip() for o in raw("CORS_ORIGINS").split(",") if o.strip()),
        log_level=parsed("LOG_LEVEL", _choice(LOG_LEVELS, upper=True), ", ".join(LOG_LEVELS)),
        interpreter_pool_size=parsed("INTERPRETER_POOL_SIZE", _pool_size, "0 or a whole number"),
        interpreter_threads=parsed("INTERPRETER_THREADS", _positive_int, "a whole number above 0"),
        load_retry_max_seconds=parsed(
            "LOAD_RETRY_MAX_SECONDS", _positive_float, "a number of seconds above 0"
        ),
        project_id=raw("GOOGLE_CLOUD_PROJECT"),
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
