"""The functions this package deploys: one declaration each, the one place that lists them.

A declaration names the entry point, the kind of task, the environment variable that names the
model (and its default in the local bucket), the function's own limits and its concurrency
policy: gunicorn's THREADS and WORKERS.
main.py binds one entry point per declaration; config.py reads exactly the variables a
declaration uses; tests check Terraform's map of functions and the README against this list.

To serve another model, add a Declaration to FUNCTIONS and an entry to Terraform's
`functions` map (README, "Serve your own model").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

TABULAR = "tabular"
IMAGE = "image"
TASK_KINDS = (TABULAR, IMAGE)


@dataclass(frozen=True)
class Threads:
    """A count for an instance of `cpus` CPUs: `fixed`, or `per_cpu` x its CPUs.

    As `threads`: functions-framework's THREADS (gunicorn threads per worker process); as
    `workers` (the alias Workers): its WORKERS (gunicorn worker processes).
    """

    fixed: int = 0
    per_cpu: int = 0
    reason: str = ""

    def for_cpus(self, cpus: int) -> int:
        return self.fixed or self.per_cpu * max(1, cpus)


Workers = Threads
ONE_WORKER = Workers(fixed=1, reason="one process: its threads share the model")


@dataclass(frozen=True)
class Declaration:
    """One deployed function.

    `limits` overrides the task kind's default limits (config.TASK_VARIABLES), still
    overridable per deployment by the environment; `paths` are extra POST paths answered as
    POST / (the lesson's clients post to /api/mpg and /api/image).
    """

    name: str
    task: str
    model_variable: str
    model_folder: str  # the model's folder in the bucket (and in the local model_bucket/)
    title: str
    summary: str
    threads: Threads
    workers: Workers = ONE_WORKER
    paths: tuple[str, ...] = ()
    limits: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"function name {self.name!r} must be a Python identifier")
        if self.task not in TASK_KINDS:
            raise ValueError(f"{self.name}: task {self.task!r} is not one of {TASK_KINDS}")
        if not (self.model_variable.isupper() and self.model_variable.endswith("_MODEL_URI")):
            raise ValueError(f"{self.name}: model variable {self.model_variable!r} must be "
                             "upper case and end in _MODEL_URI")
        if not self.threads.for_cpus(1) > 0:
            raise ValueError(f"{self.name}: THREADS must be at least 1")
        if not self.workers.for_cpus(1) > 0:
            raise ValueError(f"{self.name}: WORKERS must be at least 1")


FUNCTIONS: tuple[Declaration, ...] = (
    Declaration(
        name="predict_mpg",
        task=TABULAR,
        model_variable="MPG_MODEL_URI",
        model_folder="mpg",
        title="Auto MPG: predicted fuel economy",
        summary="POST a car's seven attributes (or {\"instances\": [...]}) -> its predicted "
                "miles per gallon.",
        threads=Threads(fixed=1, reason="GIL-bound: a second thread only adds lock hand-offs"),
        workers=Workers(per_cpu=1, reason="GIL-bound: a process per CPU uses every CPU"),
        paths=("/api/mpg",),
    ),
    Declaration(
        name="classify_image",
        task=IMAGE,
        model_variable="IMAGE_MODEL_URI",
        model_folder="image",
        title="ImageNet image classifier",
        summary="POST a photo (multipart field `image`, or a raw image/* body) -> its top-k "
                "labels. `?top_k=` 1..20 (default 5).",
        threads=Threads(per_cpu=2, reason="one thread decodes while another invokes"),
        paths=("/api/image",),
    ),
)


def declaration(name: str) -> Declaration:
    """The declared function called `name`; KeyError listing the declared ones."""
    for candidate in FUNCTIONS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no function {name!r} is declared; declared: "
                   f"{', '.join(f.name for f in FUNCTIONS)}")


def _main(argv: list[str]) -> int:
    """`python -m modelserve.declarations threads|workers NAME`: NAME's THREADS or WORKERS on
    this machine."""
    import os
    import sys

    if len(argv) != 2 or argv[0] not in ("threads", "workers"):
        print("usage: python -m modelserve.declarations threads|workers FUNCTION",
              file=sys.stderr)
        return 2
    rule = getattr(declaration(argv[1]), argv[0])
    print(rule.for_cpus(len(os.sched_getaffinity(0))))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
