"""Measure both functions against their floor and the original lesson; write the results.

    python -m benchmarks.run                       # full: ~9 min, writes benchmarks/RESULTS.md
    python -m benchmarks.run --quick --out DIR     # ~40 s: a smoke run, without the peers

For each server (the load generator's yardstick, the empty function, predict_mpg,
classify_image, the peers BentoML and LitServe serving the same .tflite files, and the
lesson's two Keras servers): warm throughput and p50/p99 at 1 and 8 keep-alive connections,
spawn-to-first-200 cold starts (a function's and its peers' interleaved round by round after
their head-to-head throughput rounds), and the peak memory of its process tree; then
classify_image's in-process loop, the machine's compute limit (one such loop per CPU, in
parallel), both functions' cold starts from gs:// (the Cloud Storage emulator) interleaved
with cold starts from the local folder, and the install sizes. The peers run from their own virtual
environments (benchmarks/peers/environments.py creates them once). Targets are printed as
PASS/FAIL ratios; nothing here fails on a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from benchmarks import report
from benchmarks.coldstart import URI_VARIABLES, bucket_against_local, cold_starts
from benchmarks.loadgen import DEFAULT_PROCESSES, http_post, run_load
from benchmarks.measure import PeakMemory, tree_cpu_seconds
from benchmarks.peers.environments import PEERS, PeerEnvironment, ensure
from benchmarks.results import (
    BENTOML_IMAGE,
    BENTOML_MPG,
    CEILING,
    CONTEXT,
    FLOOR,
    FLOOR_DEFAULT_THREADS,
    HEADLINE_CONNECTIONS,
    IMAGE,
    LESSON_IMAGE,
    LESSON_MPG,
    LITSERVE_IMAGE,
    LITSERVE_MPG,
    MINIMAL_MPG,
    MPG,
    MPG_DEFAULT_THREADS,
    PEER_SERVERS,
    SINGLE_CONNECTION,
    ComputeLimit,
    InProcess,
    Run,
    ServerResult,
    checks,
)
from benchmarks.servers import (
    FLOOR_MAIN,
    FRAMEWORK_THREADS_PER_CPU,
    FUNCTIONS_MAIN,
    HOST,
    REPO_ROOT,
    RunningServer,
    ServerSpec,
    function_spec,
    module_spec,
    recommended_threads,
    recommended_workers,
)
from benchmarks.venvsize import install_sizes

DEFAULT_OUT = REPO_ROOT / "benchmarks"
DEFAULT_WORK = REPO_ROOT / "benchmarks" / ".work"
BUCKET = REPO_ROOT / "model_bucket"
CONNECTIONS = (SINGLE_CONNECTION, HEADLINE_CONNECTIONS)
PHOTO_SIZE = (640, 480)
PHOTO_QUALITY = 90
PHOTO_SOURCES = ("cat_720p.jpg", "cat.bmp", "grace_hopper.bmp")
LESSON_REQUEST = {"cylinders": 8, "displacement": 300, "horsepower": 78, "weight": 3500,
                  "acceleration": 20, "year": 76, "origin": 1}
MULTIPART_BOUNDARY = "benchmark-boundary-7d1f"
INPROCESS_TIMEOUT_S = 300
IMPORT_TIMEOUT_S = 300
US_PER_S = 1_000_000


@dataclass(frozen=True)
class Mode:
    """How long and how often to measure."""

    name: str
    duration_s: float
    warmup_s: float
    cold_starts: int
    inprocess_s: float
    measure_install: bool
    bucket_cold_starts: int  # of each kind (local folder, gs://), interleaved
    peers: bool  # unless --peers / --no-peers says otherwise
    rounds: int  # head-to-head rounds of a function against its peers
    round_s: float  # per server and round, after a short warm-up


FULL = Mode("full", duration_s=10.0, warmup_s=2.0, cold_starts=5, inprocess_s=10.0,
            measure_install=True, bucket_cold_starts=7, peers=True, rounds=3, round_s=3.0)
# A smoke run (tests/integration/test_bench_smoke.py): every server and row, no figure that
# decides anything, so half a second per point (the load generator still waits for one answer
# on every connection, however slow the server).
QUICK = Mode("quick", duration_s=0.5, warmup_s=0.2, cold_starts=1, inprocess_s=0.5,
             measure_install=False, bucket_cold_starts=1, peers=False, rounds=1, round_s=0.5)
ROUND_WARMUP_S = 0.5


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 0.5 s per point, 1 cold start, cached install sizes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where RESULTS.md, results.json and results.png go")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="scratch folder: logs, the test photo, an imported image model")
    parser.add_argument("--mpg-model", type=Path, default=BUCKET / "mpg",
                        help="MPG model root in a local bucket (LATEST names the version)")
    parser.add_argument("--image-model", type=Path,
                        help="image model root; default model_bucket/image, else imported "
                             "from $IMAGENET_TFLITE into the work folder")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for RESULTS.md, e.g. what else ran on the machine")
    parser.add_argument("--processes", type=int, default=DEFAULT_PROCESSES,
                        help=f"load generator processes (default {DEFAULT_PROCESSES})")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=None,
                        help="measure BentoML and LitServe too (default: in the full run; "
                             "the first run installs their environments)")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(message, flush=True)


def _version_folder(root: Path) -> Path:
    latest = root / "LATEST"
    if not latest.is_file():
        raise SystemExit(f"{root} has no LATEST: train or import the model first (make models)")
    return root / latest.read_text().strip()


def image_model(explicit: Path | None, work: Path) -> Path:
    """The image model root: the argument, else $IMAGENET_TFLITE imported as shipped (as
    `make models` does), else model_bucket/image."""
    if explicit is not None:
        return explicit
    if os.environ.get("IMAGENET_TFLITE"):
        return imported_model(work / "bucket")
    if (BUCKET / "image" / "LATEST").is_file():
        return BUCKET / "image"
    raise SystemExit("No image model: pass --image-model, run `make models`, or set "
                     "IMAGENET_TFLITE to a .tflite classifier (labels beside it).")


def imported_model(bucket: Path) -> Path:
    """`python -m train.image import` of $IMAGENET_TFLITE into `bucket`, done once per work
    folder; the model root."""
    root = bucket / "image"
    if (root / "LATEST").is_file():
        return root
    tflite = os.environ["IMAGENET_TFLITE"]
    labels = Path(tflite).parent / "imagenet_labels.txt"
    say(f"importing {tflite} into {bucket}")
    subprocess.run([sys.executable, "-m", "train.image", "import", "--tflite", tflite,
                    "--labels", str(labels), "--bucket", str(bucket)],
                   cwd=REPO_ROOT, check=True, timeout=IMPORT_TIMEOUT_S, capture_output=True)
    return root


def make_photo(work: Path) -> Path:
    """A 640 x 480 JPEG made from a shared photo ($SHARED_IMAGES), cached in the work folder."""
    from PIL import Image

    target = work / f"photo-{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}.jpg"
    if target.is_file():
        return target
    shared = os.environ.get("SHARED_IMAGES")
    if not shared:
        raise SystemExit("Set SHARED_IMAGES to the shared photos folder (e.g. ../shared/images).")
    source = next((Path(shared) / name for name in PHOTO_SOURCES
                   if (Path(shared) / name).is_file()), None)
    if source is None:
        raise SystemExit(f"{shared} holds none of {', '.join(PHOTO_SOURCES)}")
    with Image.open(source) as image:
        photo = image.convert("RGB").resize(PHOTO_SIZE, Image.Resampling.LANCZOS)
    work.mkdir(parents=True, exist_ok=True)
    photo.save(target, "JPEG", quality=PHOTO_QUALITY)
    return target


def multipart_image(data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with the photo in the field `image`, and its content type."""
    head = (f"--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; "
            "filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    body = head + data + f"\r\n--{MULTIPART_BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"


def concurrency(target: str) -> dict[str, str]:
    """THREADS and WORKERS for a function: the environment's if set (then every server shares
    them), else the deployment's rule (its declaration) for this machine's CPUs."""
    cpus = _cpus()
    return {"THREADS": os.environ.get("THREADS") or str(recommended_threads(target, cpus)),
            "WORKERS": os.environ.get("WORKERS") or str(recommended_workers(target, cpus))}


def framework_defaults() -> dict[str, str]:
    """functions-framework's own THREADS (4 per CPU) and WORKERS (1), for the context rows."""
    return {"THREADS": str(FRAMEWORK_THREADS_PER_CPU * (os.cpu_count() or 1)), "WORKERS": "1"}


def function_env(target: str, uri: str) -> dict[str, str]:
    """The environment a function is measured with: its model URI, THREADS and WORKERS."""
    return {URI_VARIABLES[target]: uri, **concurrency(target)}


def peer_specs(target: str, model_root: Path, peers: dict[str, PeerEnvironment],
               body: bytes, content_type: str) -> list[tuple[ServerSpec, bytes]]:
    """BentoML and LitServe serving `target`'s model version, with their default workers."""
    if not peers:
        return []
    env = {"PEER_MODEL_DIR": str(_version_folder(model_root)), "PYTHONPATH": str(REPO_ROOT),
           "BENTOML_DO_NOT_TRACK": "true"}
    mpg = target == MPG
    bentoml = peers["bentoml"]
    litserve = peers["litserve"]
    service = "Mpg" if mpg else "Classifier"
    return [
        (ServerSpec(BENTOML_MPG if mpg else BENTOML_IMAGE, f"BentoML {bentoml.version} ({target})",
                    (str(bentoml.script("bentoml")), "serve",
                     f"benchmarks.peers.bentoml_service:{service}", "--host", HOST,
                     "--port", "{port}"), env),
         http_post("/predict" if mpg else "/classify", body, content_type)),
        (ServerSpec(LITSERVE_MPG if mpg else LITSERVE_IMAGE,
                    f"LitServe {litserve.version} ({target})",
                    (str(litserve.python), "-m", "benchmarks.peers.litserve_server", "--task",
                     "mpg" if mpg else "image", "--port", "{port}"), env),
         http_post("/predict", body, content_type)),
    ]


def server_plan(mpg_root: Path, image_root: Path, photo: Path,
                peers: dict[str, PeerEnvironment]) -> list[tuple[ServerSpec, bytes]]:
    """Every server to measure, with the request it is loaded with, in measuring order.

    The floor runs with predict_mpg's THREADS and WORKERS, so the two differ only in the
    function's work; context rows show both with functions-framework's defaults. Each function's
    peers follow it directly, so they meet the same load on the machine.
    """
    mpg_env = function_env(MPG, str(mpg_root))
    image_env = function_env(IMAGE, str(image_root))
    mpg_body = json.dumps(LESSON_REQUEST).encode()
    mpg_request = http_post("/", mpg_body, "application/json")
    body, content_type = multipart_image(photo.read_bytes())
    image_request = http_post("/", body, content_type)
    labels = _version_folder(image_root) / "labels.txt"
    lesson_image_args = ("--labels", str(labels)) if labels.is_file() else ()
    default = framework_defaults()
    plan = [
        (module_spec(CEILING, "load generator ceiling (asyncio constant answer)",
                     "benchmarks.constserver"), mpg_request),
        (function_spec(FLOOR, "empty function (floor)", FLOOR_MAIN, "empty",
                       concurrency("predict_mpg")), mpg_request),
        (function_spec(MPG, "predict_mpg", FUNCTIONS_MAIN, "predict_mpg", mpg_env),
         mpg_request),
        *peer_specs(MPG, mpg_root, peers, mpg_body, "application/json"),
        (function_spec(MINIMAL_MPG, "minimal MPG function (parse, invoke, answer; no checks, "
                       "no log)", FLOOR_MAIN, "minimal_mpg",
                       {"MINIMAL_TFLITE": str(_version_folder(mpg_root) / "model.tflite"),
                        **concurrency("predict_mpg")}), mpg_request),
        (function_spec(FLOOR_DEFAULT_THREADS, f"empty function, THREADS={default['THREADS']} "
                       "(framework default)", FLOOR_MAIN, "empty", default), mpg_request),
        (function_spec(MPG_DEFAULT_THREADS, f"predict_mpg, THREADS={default['THREADS']} "
                       "(framework default)", FUNCTIONS_MAIN, "predict_mpg",
                       {**mpg_env, **default}), mpg_request),
        (module_spec(LESSON_MPG, "lesson MPG server (Flask + keras predict)",
                     "benchmarks.baseline.mpg_server", "--model",
                     str(_version_folder(mpg_root) / "model.keras")), mpg_request),
        (function_spec(IMAGE, "classify_image", FUNCTIONS_MAIN, "classify_image", image_env),
         image_request),
        *peer_specs(IMAGE, image_root, peers, body, content_type),
    ]
    plan.append((module_spec(LESSON_IMAGE, "lesson image server (Flask + keras MobileNetV2)",
                             "benchmarks.baseline.image_server", *lesson_image_args),
                 image_request))
    return plan


def _input_dtype(model_root: Path) -> str:
    manifest = json.loads((_version_folder(model_root) / "manifest.json").read_text())
    return str(manifest["input"].get("dtype", "?"))


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def measure_server(spec: ServerSpec, request: bytes, mode: Mode, work: Path,
                   processes: int, starts: int | None = None) -> ServerResult:
    """Warm points on one instance (its start is the first cold start), then more cold starts
    (`starts` in all; default: the mode's, one for context rows)."""
    result = ServerResult(spec.key, spec.label)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if starts is None:
        starts = 1 if spec.key in CONTEXT else mode.cold_starts
    for attempt in range(starts):
        with tempfile.TemporaryDirectory(dir=work) as cache:
            fresh = dataclasses.replace(spec, env={**spec.env, "MODEL_CACHE_DIR": cache})
            with RunningServer(fresh, logs / f"{spec.key}-{attempt}.log") as server:
                if attempt == 0:
                    _warm_points(server, request, mode, processes, result)
                else:
                    result.cold_starts_s.append(server.start(request))
    memory = f"  peak RSS {result.memory.rss_mb:.0f} MB" if result.memory else ""
    say(f"  {spec.key:16} cold start median {result.cold_start_s:.3f} s "
        f"({len(result.cold_starts_s)} starts){memory}")
    return result


def _warm_points(server: RunningServer, request: bytes, mode: Mode, processes: int,
                 result: ServerResult) -> None:
    """Start `server` (a cold start) and load it at each connection count, sampling memory."""
    server.spawn()
    sampling = result.key != CEILING
    with PeakMemory(server.pid) if sampling else contextlib.nullcontext() as peak:
        result.cold_starts_s.append(server.wait_ready(request))
        for connections in CONNECTIONS:
            cpu_before = tree_cpu_seconds(server.pid)
            point = run_load(server.target(request), connections, mode.duration_s,
                             mode.warmup_s, processes)
            cpu = tree_cpu_seconds(server.pid) - cpu_before
            result.points[connections] = point
            result.cpu_us[connections] = cpu / max(point.completed, 1) * US_PER_S
            say(f"  {result.key:16} {connections} conn: {point.rps:9,.0f} req/s  "
                f"p50 {point.p50_ms:7.2f} ms  p99 {point.p99_ms:7.2f} ms  "
                f"CPU {result.cpu_us[connections]:8,.0f} us/req  non-200 {point.errors}")
    if peak is not None:
        result.memory = peak.peak


def _inprocess(image_root: Path, photo: Path, seconds: float, processes: int) -> dict:
    """benchmarks.inprocess in a child process (its imports stay out of this one)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.inprocess", "--model", str(image_root),
         "--image", str(photo), "--seconds", str(seconds), "--processes", str(processes)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=INPROCESS_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"in-process loop failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def head_to_head(plan: list[tuple[ServerSpec, bytes]], mode: Mode, work: Path,
                 processes: int) -> dict[str, list[float]]:
    """A function and its peers running side by side, loaded in turn at 8 connections for
    `mode.rounds` rounds (the order rotates): req/s of each round, by server. What the
    machine's other load does to one, it does to the others within seconds."""
    with contextlib.ExitStack() as stack:
        running = []
        for spec, request in plan:
            cache = stack.enter_context(tempfile.TemporaryDirectory(dir=work))
            fresh = dataclasses.replace(spec, env={**spec.env, "MODEL_CACHE_DIR": cache})
            server = stack.enter_context(RunningServer(fresh, work / "logs" /
                                                       f"{spec.key}-head-to-head.log"))
            server.start(request)
            running.append((spec.key, server, request))
        rates: dict[str, list[float]] = {key: [] for key, _, _ in running}
        for attempt in range(mode.rounds):
            shift = attempt % len(running)
            for key, server, request in running[shift:] + running[:shift]:
                point = run_load(server.target(request), HEADLINE_CONNECTIONS, mode.round_s,
                                 ROUND_WARMUP_S, processes)
                rates[key].append(point.rps)
    say("  head to head (8 conn): " + ", ".join(
        f"{key} {statistics.median(values):,.0f}" for key, values in rates.items()) + " req/s")
    return rates


def rivals_cold_starts(plan: list[tuple[ServerSpec, bytes]], rounds: int,
                       work: Path) -> dict[str, list[float]]:
    """Cold starts of a function and its peers, interleaved round by round (the order
    rotates), so that a target comparing them is not decided by when each was measured; each
    with its own probe request and an empty model cache."""
    variants = {spec.key: spec for spec, _ in plan}
    seconds, _ = cold_starts(variants, {spec.key: request for spec, request in plan}, rounds,
                             work)
    say("  cold starts, interleaved: " + ", ".join(
        f"{key} {statistics.median(values):.3f} s" for key, values in seconds.items()))
    return seconds


def inprocess_loop(image_root: Path, photo: Path, seconds: float) -> InProcess:
    """classify_image's floor: decode + resize + invoke in one loop, no HTTP."""
    data = _inprocess(image_root, photo, seconds, 1)
    return InProcess(data["iterations"], data["rate"], data["p50_ms"], data["p99_ms"])


def compute_limit(image_root: Path, photo: Path, seconds: float) -> ComputeLimit:
    """One in-process loop per CPU at the same time, each with its own interpreter."""
    processes = _cpus()
    if processes == 1:
        loop = inprocess_loop(image_root, photo, seconds)
        return ComputeLimit(1, loop.rate, (loop.rate,))
    data = _inprocess(image_root, photo, seconds, processes)
    return ComputeLimit(data["processes"], data["rate"], tuple(data["rates"]))


def peer_environments(enabled: bool) -> dict[str, PeerEnvironment]:
    """The peers' environments (created on first use), or none."""
    return {peer: ensure(peer, say) for peer in PEERS} if enabled else {}


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_info() -> dict[str, str]:
    """nproc, CPU model, memory, OS, Python and package versions, date, load."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    versions = []
    for package in ("functions-framework", "gunicorn", "flask", "ai-edge-litert", "numpy",
                    "pillow", "tensorflow-cpu", "keras"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": ", ".join(versions),
        "load_before": _load_average(),
    }


def function_settings() -> str:
    """The serving knobs the functions ran with (inherited from the environment if set)."""
    cpus = _cpus()
    env = os.environ
    knobs = {
        "THREADS": env.get("THREADS") or (
            f"predict_mpg {recommended_threads('predict_mpg', cpus)}, classify_image "
            f"{recommended_threads('classify_image', cpus)} (the deployment's rule, "
            "benchmarks/servers.py; the floor runs with predict_mpg's)"),
        "WORKERS": env.get("WORKERS") or (
            f"predict_mpg {recommended_workers('predict_mpg', cpus)}, classify_image "
            f"{recommended_workers('classify_image', cpus)} (the deployment's rule; the floor "
            "runs with predict_mpg's)"),
        "INTERPRETER_POOL_SIZE": env.get("INTERPRETER_POOL_SIZE") or f"0 = {cpus} (one per CPU)",
        "INTERPRETER_THREADS": env.get("INTERPRETER_THREADS") or "1 (default)",
        "LOG_LEVEL": env.get("LOG_LEVEL") or "INFO (default: a JSON line per request, to a file)",
    }
    return ", ".join(f"{name}={value}" for name, value in knobs.items())


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the `with` blocks that stop the servers


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    mode = QUICK if args.quick else FULL
    command = shlex.join(["python", "-m", "benchmarks.run", *(sys.argv[1:] if argv is None
                                                                else argv)])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    image_root = image_model(args.image_model, work).resolve()
    mpg_root = args.mpg_model.resolve()
    photo = make_photo(work)
    peers = peer_environments(mode.peers if args.peers is None else args.peers)
    say(f"{mode.name} run: {mode.duration_s:g} s per point, {mode.cold_starts} cold start(s); "
        f"logs in {work / 'logs'}")
    servers = {}
    requests = {}
    plan = server_plan(mpg_root, image_root, photo, peers)
    rivals = {target: [(spec, request) for spec, request in plan
                       if spec.key == target or spec.key in keys]
              for target, keys in PEER_SERVERS.items()}
    rounds = {}
    rival_keys = {spec.key for group in rivals.values() for spec, _ in group}
    for spec, request in plan:
        # A function and its peers: their cold starts beyond the first are interleaved below.
        starts = 1 if peers and spec.key in rival_keys else None
        servers[spec.key] = measure_server(spec, request, mode, work, args.processes, starts)
        requests[spec.key] = request
        group = next((target for target, keys in PEER_SERVERS.items() if spec.key in keys
                      and spec.key == keys[-1]), None)
        if peers and group is not None:  # the function's last peer is measured
            rounds.update(head_to_head(rivals[group], mode, work, args.processes))
            interleaved = rivals_cold_starts(rivals[group], mode.cold_starts - 1, work)
            for key, values in interleaved.items():
                servers[key].cold_starts_s.extend(values)
        if spec.key == IMAGE:  # its floors right after it, before the machine's load drifts
            say("  in-process loop ...")
            inprocess = inprocess_loop(image_root, photo, mode.inprocess_s)
            say(f"  in-process loop: {inprocess.rate:,.0f}/s  p50 {inprocess.p50_ms:.2f} ms")
            limit = compute_limit(image_root, photo, mode.inprocess_s)
            say(f"  compute limit: {limit.processes} loops in parallel: {limit.rate:,.0f}/s "
                f"({', '.join(f'{rate:,.0f}' for rate in limit.rates)})")
    say("  cold starts from gs:// (emulator) and the local folder, interleaved ...")
    bucket_cold = bucket_against_local({MPG: mpg_root, IMAGE: image_root}, requests,
                                       mode.bucket_cold_starts, work, function_env)
    for cold in bucket_cold.values():
        say(f"  {cold.target:16} cold start local {statistics.median(cold.local_s):.3f} s, "
            f"gs:// {statistics.median(cold.bucket_s):.3f} s ({cold.ratio:.2f}x, "
            f"{len(cold.local_s)} each)")
    install = install_sizes(allow_measure=mode.measure_install)
    machine["load_after"] = _load_average()
    ceiling = servers[CEILING].rps()
    settings = {
        "mode": mode.name,
        "duration": f"{mode.duration_s:g} s",
        "warmup": f"{mode.warmup_s:g} s",
        "cold_starts": str(mode.cold_starts),
        "functions": function_settings(),
        "loadgen": (f"benchmarks/loadgen.py, raw-socket keep-alive HTTP/1.1, "
                    f"{min(args.processes, HEADLINE_CONNECTIONS)} processes at "
                    f"{HEADLINE_CONNECTIONS} connections; "
                    f"ceiling {ceiling:,.0f} req/s against an asyncio constant-answer server, "
                    f"{ceiling / max(servers[FLOOR].rps(), 1):.1f} x the empty function"),
    }
    run = Run(servers, inprocess, install, settings, machine, compute_limit=limit,
              bucket_cold=bucket_cold, rounds=rounds,
              peer_install_mb={env.spec: env.installed_mb for env in peers.values()})
    notes = [f"Photo: {PHOTO_SIZE[0]} x {PHOTO_SIZE[1]} JPEG ({photo.stat().st_size:,} bytes), "
             f"made from $SHARED_IMAGES; models: {mpg_root.name}/"
             f"{_version_folder(mpg_root).name}, {image_root.name}/"
             f"{_version_folder(image_root).name} ({_input_dtype(image_root)} input)",
             "Lesson image server: MobileNetV2 with weights=None (same compute as ImageNet "
             "weights).", *args.note]
    written = report.write(run, args.out, command, notes)
    for check in checks(run):
        say(f"{check.verdict}  {check.claim}: {check.value:.2f}{check.unit} ({check.rule})")
    say("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
