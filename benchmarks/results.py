"""What a benchmark run produces: per-server figures, the targets checked against them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from benchmarks.loadgen import LoadResult
from benchmarks.measure import Memory
from benchmarks.venvsize import InstallSizes

FLOOR = "floor"
MPG = "predict_mpg"
LESSON_MPG = "lesson_mpg"
IMAGE = "classify_image"
LESSON_IMAGE = "lesson_image"
CEILING = "loadgen_ceiling"
# Context rows, one start each: the least a function serving the MPG model can do, and the
# same servers with functions-framework's default THREADS.
MINIMAL_MPG = "minimal_mpg"
FLOOR_DEFAULT_THREADS = "floor_default_threads"
MPG_DEFAULT_THREADS = "predict_mpg_default_threads"
CONTEXT = (CEILING, MINIMAL_MPG, FLOOR_DEFAULT_THREADS, MPG_DEFAULT_THREADS)
# The peers a user would pick instead, serving the same .tflite files (benchmarks/peers/).
BENTOML_MPG = "bentoml_mpg"
LITSERVE_MPG = "litserve_mpg"
BENTOML_IMAGE = "bentoml_image"
LITSERVE_IMAGE = "litserve_image"
PEER_SERVERS = {MPG: (BENTOML_MPG, LITSERVE_MPG), IMAGE: (BENTOML_IMAGE, LITSERVE_IMAGE)}
HEADLINE_CONNECTIONS = 8  # throughput targets compare this point (the design table's)
SINGLE_CONNECTION = 1


@dataclass
class ServerResult:
    """One server's figures: load points, spawn-to-first-200 times, peak memory."""

    key: str
    label: str
    points: dict[int, LoadResult] = field(default_factory=dict)
    cold_starts_s: list[float] = field(default_factory=list)
    memory: Memory | None = None
    cpu_us: dict[int, float] = field(default_factory=dict)  # server CPU per answer, by conns

    @property
    def cold_start_s(self) -> float:
        return statistics.median(self.cold_starts_s) if self.cold_starts_s else 0.0

    def rps(self, connections: int = HEADLINE_CONNECTIONS) -> float:
        return self.points[connections].rps

    def p50_ms(self, connections: int = HEADLINE_CONNECTIONS) -> float:
        return self.points[connections].p50_ms


@dataclass(frozen=True)
class InProcess:
    """classify_image's in-process loop (decode + resize + invoke, same image)."""

    iterations: int
    rate: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ComputeLimit:
    """N in-process decode + resize + invoke loops in parallel, one interpreter each."""

    processes: int
    rate: float  # all processes together, per second
    rates: tuple[float, ...]  # each process


@dataclass
class BucketColdStarts:
    """One function's cold starts from a local folder and from gs:// (the emulator),
    interleaved; and the gs:// starts' own log figures (resolve_ms, download_ms, ...)."""

    target: str
    local_s: list[float] = field(default_factory=list)
    bucket_s: list[float] = field(default_factory=list)
    bucket_timings_ms: list[dict[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return _ratio(statistics.median(self.bucket_s), statistics.median(self.local_s))

    def median_timing_ms(self, name: str) -> float:
        values = [t[name] for t in self.bucket_timings_ms if name in t]
        return statistics.median(values) if values else 0.0


@dataclass(frozen=True)
class Check:
    """One target: a measured figure against its limit."""

    claim: str
    value: float
    limit: float
    at_least: bool  # True: value >= limit passes; False: value <= limit passes
    unit: str = "x"

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def rule(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.limit:g}{self.unit}"


@dataclass
class Run:
    """Everything one run measured."""

    servers: dict[str, ServerResult]
    inprocess: InProcess
    install: InstallSizes | None
    settings: dict[str, str]
    machine: dict[str, str]
    compute_limit: ComputeLimit | None = None
    bucket_cold: dict[str, BucketColdStarts] = field(default_factory=dict)
    peer_install_mb: dict[str, float] = field(default_factory=dict)  # peer -> MB
    # Head-to-head req/s at 8 connections, a function and its peers in turn, by server key.
    rounds: dict[str, list[float]] = field(default_factory=dict)

    def head_to_head_rps(self, key: str) -> float:
        """The median of the head-to-head rounds, else the server's own 8-connection point."""
        values = self.rounds.get(key)
        return statistics.median(values) if values else self.servers[key].rps()


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def checks(run: Run) -> list[Check]:
    """The issue's targets, as ratios within this one run."""
    s = run.servers
    mpg, floor, lesson_mpg = s[MPG], s[FLOOR], s[LESSON_MPG]
    image, lesson_image = s[IMAGE], s[LESSON_IMAGE]
    n = HEADLINE_CONNECTIONS
    found = [
        Check(f"predict_mpg req/s / empty function req/s ({n} conn)",
              _ratio(mpg.rps(), floor.rps()), 0.9, at_least=True),
        Check(f"predict_mpg req/s / lesson MPG server req/s ({n} conn)",
              _ratio(mpg.rps(), lesson_mpg.rps()), 40, at_least=True),
        Check(f"predict_mpg p50 / empty function p50 ({n} conn)",
              _ratio(mpg.p50_ms(), floor.p50_ms()), 1.15, at_least=False),
        Check("classify_image p50 (1 conn) / in-process loop p50, 640 x 480 JPEG",
              _ratio(image.p50_ms(SINGLE_CONNECTION), run.inprocess.p50_ms), 1.25,
              at_least=False),
        Check(f"classify_image req/s / lesson Keras image server req/s ({n} conn)",
              _ratio(image.rps(), lesson_image.rps()), 10, at_least=True),
        Check("predict_mpg cold start / empty function cold start",
              _ratio(mpg.cold_start_s, floor.cold_start_s), 1.5, at_least=False),
        Check("classify_image cold start / empty function cold start",
              _ratio(image.cold_start_s, floor.cold_start_s), 2.5, at_least=False),
        Check("lesson MPG server cold start / predict_mpg cold start",
              _ratio(lesson_mpg.cold_start_s, mpg.cold_start_s), 5, at_least=True),
        Check("lesson image server cold start / classify_image cold start",
              _ratio(lesson_image.cold_start_s, image.cold_start_s), 5, at_least=True),
        Check("predict_mpg peak RSS of the process tree",
              mpg.memory.rss_mb if mpg.memory else 0.0, 150, at_least=False, unit=" MB"),
        Check("classify_image peak RSS of the process tree",
              image.memory.rss_mb if image.memory else 0.0, 250, at_least=False, unit=" MB"),
    ]
    for target, cold in run.bucket_cold.items():
        found.append(Check(f"{target} cold start from gs:// (emulator) / from a local folder, "
                           "interleaved", cold.ratio, 1.1, at_least=False))
    found += _peer_checks(run)
    if run.compute_limit is not None:
        found.append(Check(f"classify_image req/s ({n} conn) / {run.compute_limit.processes} "
                           "in-process loops in parallel (the compute limit)",
                           _ratio(image.rps(), run.compute_limit.rate), 0.9, at_least=True))
    if run.install is not None:
        found.append(Check("runtime install size / TensorFlow-based install size",
                           run.install.ratio * 100, 20, at_least=False, unit=" %"))
    return found


def best_peer(run: Run, target: str) -> dict[str, ServerResult]:
    """The target's peers measured in this run, by key."""
    return {key: run.servers[key] for key in PEER_SERVERS[target] if key in run.servers}


def _peer_checks(run: Run) -> list[Check]:
    """Each function against the best of its peers: throughput, cold start, peak RSS."""
    found = []
    n = HEADLINE_CONNECTIONS
    for target in PEER_SERVERS:
        peers = list(best_peer(run, target).values())
        if not peers:
            continue
        ours = run.servers[target]
        fastest = max(peers, key=lambda s: run.head_to_head_rps(s.key))
        quickest = min(peers, key=lambda s: s.cold_start_s)
        leanest = min(peers, key=lambda s: s.memory.rss_mb if s.memory else float("inf"))
        found += [
            Check(f"{target} req/s / best peer req/s ({n} conn, head to head; {fastest.key})",
                  _ratio(run.head_to_head_rps(target), run.head_to_head_rps(fastest.key)), 2,
                  at_least=True),
            Check(f"{target} cold start / best peer cold start ({quickest.key})",
                  _ratio(ours.cold_start_s, quickest.cold_start_s), 0.3, at_least=False),
            Check(f"{target} peak RSS / best peer peak RSS ({leanest.key})",
                  _ratio(ours.memory.rss_mb if ours.memory else 0.0,
                         leanest.memory.rss_mb if leanest.memory else 0.0),
                  0.6, at_least=False),
        ]
    return found
