"""Cold starts from gs:// (the Cloud Storage emulator on loopback) against the local folder.

    python -m benchmarks.coldstart --starts 7                      # this tree
    python -m benchmarks.coldstart --source before=/tmp/functions-main --starts 7
    python -m benchmarks.coldstart --source before=/tmp/functions-main --fetch-only --starts 15

For each function (predict_mpg, classify_image) and each source folder of functions (this
tree's functions/, and any `--source NAME=DIR`, e.g. an older version's copy), spawn to the
first 200 with the model from the local folder, from the gs:// model root (LATEST read) and
from the gs:// version folder (pinned), interleaved round by round with the order rotated,
every start with an empty cache. The same version of each model is published to the emulator
with train.publish. benchmarks.run uses `bucket_against_local` for its table and target.

`--fetch-only` times just the first fetch_version in a fresh interpreter that has imported
what a function has imported before its first request (the framework, numpy, LiteRT): the
reader's or client's import and creation, the round trips and the download, without the
noise of a whole server start.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.results import IMAGE, MPG, BucketColdStarts
from benchmarks.servers import FUNCTIONS_MAIN, REPO_ROOT, RunningServer, ServerSpec, function_spec

EMULATOR_BUCKET = "models"
COLD_START_LOG_MESSAGE = "cold start: model loaded"
URI_VARIABLES = {MPG: "MPG_MODEL_URI", IMAGE: "IMAGE_MODEL_URI"}
LOCAL, BUCKET_ROOT, BUCKET_PINNED = "local", "gs", "gs-pinned"
FETCH_TIMEOUT_S = 120
# What a fresh interpreter runs for --fetch-only: the function's imports, then one timed fetch.
FETCH_SNIPPET = """
import sys, tempfile, time
from pathlib import Path
import flask, functions_framework, numpy, ai_edge_litert.interpreter
started = time.perf_counter()
from modelserve.artifacts import fetch_version
with tempfile.TemporaryDirectory() as cache:
    fetch_version(sys.argv[1], Path(cache), lambda m: tuple(
        [m.output["label_file"]] if m.task == "image_classification" else []))
print((time.perf_counter() - started) * 1000)
"""


@contextmanager
def emulator_with(roots: Sequence[Path], logs: Path) -> Iterator[str]:
    """The emulator with each model root's LATEST version published; its STORAGE_EMULATOR_HOST."""
    from tests.storage_emulator import StorageEmulator
    from train.publish import parse_args as publish_args
    from train.publish import run as publish

    logs.mkdir(parents=True, exist_ok=True)
    with StorageEmulator(logs / "emulator.log", bucket=EMULATOR_BUCKET) as emulator:
        for root in roots:
            argv = ["--bucket", str(root.parent), "--to", f"gs://{EMULATOR_BUCKET}",
                    "--set-latest", "--model", root.name]
            publish(publish_args(argv), client=emulator.client(), say=lambda _: None)
        yield emulator.host


def model_uri(kind: str, root: Path) -> str:
    """The model URI of a kind of start: the local root, the gs:// root, the gs:// version."""
    if kind == LOCAL:
        return str(root)
    uri = f"gs://{EMULATOR_BUCKET}/{root.name}"
    if kind == BUCKET_PINNED:
        uri += "/" + (root / "LATEST").read_text().strip()
    return uri


def cold_starts(
    variants: dict[str, ServerSpec], request: bytes | Mapping[str, bytes], starts: int,
    work: Path,
) -> tuple[dict[str, list[float]], dict[str, list[dict[str, float]]]]:
    """`starts` spawn-to-first-200 times of each variant, interleaved (the order rotates each
    round), each with an empty MODEL_CACHE_DIR; and each start's cold-start log timings.

    `request` is the probe every variant answers, or each variant's own by name."""
    names = list(variants)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    timings: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for attempt in range(starts):
        shift = attempt % len(names)
        for name in names[shift:] + names[:shift]:
            log = logs / f"cold-{name.replace('/', '-')}-{attempt}.log"
            with tempfile.TemporaryDirectory(dir=work) as cache:
                spec = variants[name]
                fresh = dataclasses.replace(spec, env={**spec.env, "MODEL_CACHE_DIR": cache})
                probe = request[name] if isinstance(request, Mapping) else request
                with RunningServer(fresh, log) as server:
                    seconds[name].append(server.start(probe))
            timings[name].append(cold_start_timings(log))
    return seconds, timings


def cold_start_timings(log: Path) -> dict[str, float]:
    """The *_ms fields of the function's cold-start log line ({} if it has none)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and COLD_START_LOG_MESSAGE in line:
            data = json.loads(line)
            return {key: float(value) for key, value in data.items()
                    if key.endswith("_ms") and isinstance(value, int | float)}
    return {}


def bucket_against_local(
    roots: dict[str, Path], requests: dict[str, bytes], starts: int, work: Path,
    env: Callable[[str, str], dict[str, str]],
) -> dict[str, BucketColdStarts]:
    """Each function from its local folder and from its gs:// root, interleaved (the table
    and target of benchmarks.run); `env(target, uri)` is the function's environment."""
    found = {}
    with emulator_with(list(roots.values()), work / "logs") as host:
        for target, root in roots.items():
            variants = {
                kind: function_spec(target, target, FUNCTIONS_MAIN, target,
                                    {**env(target, model_uri(kind, root)),
                                     **({"STORAGE_EMULATOR_HOST": host} if kind != LOCAL
                                        else {})})
                for kind in (LOCAL, BUCKET_ROOT)
            }
            seconds, timings = cold_starts(variants, requests[target], starts, work)
            found[target] = BucketColdStarts(target, seconds[LOCAL], seconds[BUCKET_ROOT],
                                             timings[BUCKET_ROOT])
    return found


def fetch_ms(folder: Path, uri: str, host: str) -> float:
    """The first fetch_version of `uri` with the functions in `folder`, in a fresh process."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": f"{folder}:{REPO_ROOT}"}
    if uri.startswith("gs://"):
        env["STORAGE_EMULATOR_HOST"] = host
    done = subprocess.run([sys.executable, "-c", FETCH_SNIPPET, uri], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _fetch_only(sources: dict[str, Path], roots: dict[str, Path], starts: int,
                host: str) -> None:
    for target, root in roots.items():
        runs: dict[str, list[float]] = {}
        names = [(source, kind) for source in sources
                 for kind in (LOCAL, BUCKET_ROOT, BUCKET_PINNED)]
        for attempt in range(starts):
            shift = attempt % len(names)
            for source, kind in names[shift:] + names[:shift]:
                runs.setdefault(f"{target}/{source}/{kind}", []).append(
                    fetch_ms(sources[source], model_uri(kind, root), host))
        for name, values in runs.items():
            print(f"{name:36} first fetch median {statistics.median(values):7.1f} ms  "
                  f"min {min(values):7.1f}  max {max(values):7.1f}  ({len(values)} runs)",
                  flush=True)


def _source(text: str) -> tuple[str, Path]:
    name, _, folder = text.partition("=")
    if not name or not (Path(folder) / "main.py").is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: want NAME=DIR with DIR/main.py")
    return name, Path(folder).resolve()


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.loadgen import http_post
    from benchmarks.run import (
        BUCKET,
        DEFAULT_WORK,
        LESSON_REQUEST,
        function_env,
        image_model,
        make_photo,
        multipart_image,
    )

    parser = argparse.ArgumentParser(prog="python -m benchmarks.coldstart",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=_source, action="append", default=[],
                        help="NAME=DIR: another functions source folder to start beside this one")
    parser.add_argument("--starts", type=int, default=7, help="starts of each kind")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--fetch-only", action="store_true",
                        help="time the first fetch_version in a fresh interpreter, no server")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    roots = {MPG: (BUCKET / "mpg").resolve(), IMAGE: image_model(None, work).resolve()}
    body, content_type = multipart_image(make_photo(work).read_bytes())
    requests = {MPG: http_post("/", json.dumps(LESSON_REQUEST).encode(), "application/json"),
                IMAGE: http_post("/", body, content_type)}
    sources = {"this": REPO_ROOT / "functions", **dict(args.source)}
    with emulator_with(list(roots.values()), work / "logs") as host:
        if args.fetch_only:
            _fetch_only(sources, roots, args.starts, host)
            return 0
        for target, root in roots.items():
            variants = {}
            for source, folder in sources.items():
                for kind in (LOCAL, BUCKET_ROOT, BUCKET_PINNED):
                    environment = {**function_env(target, model_uri(kind, root)),
                                   "PYTHONPATH": f"{folder}:{REPO_ROOT}"}
                    if kind != LOCAL:
                        environment["STORAGE_EMULATOR_HOST"] = host
                    variants[f"{target}/{source}/{kind}"] = function_spec(
                        target, target, folder / "main.py", target, environment)
            seconds, timings = cold_starts(variants, requests[target], args.starts, work)
            for name in variants:
                resolve = [t.get("resolve_ms", 0.0) for t in timings[name]]
                download = [t.get("download_ms", 0.0) for t in timings[name]]
                print(f"{name:36} median {statistics.median(seconds[name]):.3f} s  "
                      f"min {min(seconds[name]):.3f}  max {max(seconds[name]):.3f}  "
                      f"resolve_ms {statistics.median(resolve):6.1f}  "
                      f"download_ms {statistics.median(download):6.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
