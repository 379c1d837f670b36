"""The servers under test: how to start each one, and a process that is always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.loadgen import Target, request_once
from modelserve.declarations import declaration

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
FUNCTIONS_MAIN = REPO_ROOT / "functions" / "main.py"
FLOOR_MAIN = REPO_ROOT / "benchmarks" / "floor" / "main.py"
START_TIMEOUT_S = 120.0  # the Keras servers import TensorFlow: seconds on a busy machine
STOP_TIMEOUT_S = 15.0
PROBE_INTERVAL_S = 0.005
PROBE_TIMEOUT_S = 30.0
# Read by the functions; never inherited from the caller's shell. The tuning knobs the results
# record (THREADS, WORKERS, INTERPRETER_POOL_SIZE, INTERPRETER_THREADS, LOG_LEVEL) are.
ISOLATED_VARIABLES = (
    "MPG_MODEL_URI", "IMAGE_MODEL_URI", "MODEL_CACHE_DIR", "MAX_JSON_BYTES", "MAX_BATCH_SIZE",
    "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "OUT_OF_RANGE", "CORS_ORIGINS",
    "LOAD_RETRY_MAX_SECONDS", "GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST",
)


# The gunicorn threads (THREADS) each function is deployed with; terraform/variables.tf's
# defaults follow the same rule (tests/unit/test_terraform.py). predict_mpg holds the GIL for
# nearly all of a request: a second thread takes it at every release (the invoke, the log
# write) and doubles the function's CPU per request (measured: 150 -> 290 us). classify_image
# releases it for most of a request (decoding, invoking): two per CPU keep each interpreter busy.
FRAMEWORK_THREADS_PER_CPU = 4  # functions-framework's default: THREADS = 4 x os.cpu_count()


def recommended_threads(target: str, cpus: int) -> int:
    """THREADS for the function `target` on an instance with `cpus` CPUs (its declaration's)."""
    return declaration(target).threads.for_cpus(cpus)


def recommended_workers(target: str, cpus: int) -> int:
    """WORKERS for the function `target` on an instance with `cpus` CPUs (its declaration's)."""
    return declaration(target).workers.for_cpus(cpus)


@dataclass(frozen=True)
class ServerSpec:
    """One server under test: its command (`{port}` is filled in) and extra environment."""

    key: str
    label: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def command(self, port: int) -> list[str]:
        return [part.replace("{port}", str(port)) for part in self.argv]


def function_spec(
    key: str, label: str, source: Path, target: str, env: dict[str, str]
) -> ServerSpec:
    """A functions-framework server, as `make serve` starts it."""
    argv = (sys.executable, "-m", "functions_framework", "--source", str(source),
            "--target", target, "--host", HOST, "--port", "{port}")
    return ServerSpec(key, label, argv, env)


def module_spec(key: str, label: str, module: str, *args: str) -> ServerSpec:
    """A server started as `python -m module --port PORT ARGS`."""
    keras_quiet = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    return ServerSpec(key, label, (sys.executable, "-m", module, "--port", "{port}", *args),
                      keras_quiet)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_environment(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without the functions' configuration, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if name not in ISOLATED_VARIABLES}
    env.update(extra)
    return env


class RunningServer:
    """A started server process (its own process group), stopped by `stop()` or `with`."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process: subprocess.Popen | None = None
        self._spawned_at = 0.0

    def spawn(self) -> None:
        """Start the process (its own session, so stop() reaches every child)."""
        self._spawned_at = time.perf_counter()
        self.process = subprocess.Popen(
            self.spec.command(self.port), env=server_environment(self.spec.env), cwd=REPO_ROOT,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, probe_request: bytes) -> float:
        """POST `probe_request` until it answers 200; the seconds since spawn()."""
        process = self.process
        assert process is not None, "spawn() first"
        target = self.target(probe_request)
        deadline = self._spawned_at + START_TIMEOUT_S
        last = "no answer"
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{self.spec.key} exited with {process.returncode}; "
                                   f"see {self.log_path}")
            try:
                status = request_once(target, PROBE_TIMEOUT_S)
            except OSError as exc:
                last = str(exc)
                time.sleep(PROBE_INTERVAL_S)
                continue
            if status == 200:
                return time.perf_counter() - self._spawned_at
            last = f"HTTP {status}"
            time.sleep(PROBE_INTERVAL_S)
        raise RuntimeError(f"{self.spec.key} gave no 200 within {START_TIMEOUT_S} s ({last}); "
                           f"see {self.log_path}")

    def start(self, probe_request: bytes) -> float:
        """spawn() and wait_ready(): the spawn-to-first-200 seconds."""
        self.spawn()
        return self.wait_ready(probe_request)

    def target(self, request: bytes) -> Target:
        """Load-generator target for this server (the request's Host header is not checked)."""
        return Target(HOST, self.port, request)

    @property
    def pid(self) -> int:
        assert self.process is not None, "spawn() first"
        return self.process.pid

    def stop(self) -> None:
        """Terminate the process group (gunicorn's workers too); kill it if it lingers."""
        process = self.process
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)  # stragglers left in the group
        self._log.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
