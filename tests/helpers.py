"""Test helpers: real functions-framework processes on free loopback ports, model buckets."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_MAIN = REPO_ROOT / "functions" / "main.py"
COMMITTED_BUCKET = REPO_ROOT / "model_bucket"
LESSON_REQUEST = {"cylinders": 8, "displacement": 300, "horsepower": 78, "weight": 3500,
                  "acceleration": 20, "year": 76, "origin": 1}
# Where Keras downloads the ImageNet weights from: the offline tests need it unreachable.
WEIGHTS_HOST = ("storage.googleapis.com", 443)
START_TIMEOUT_S = 60.0
KERAS_NOISE = "ignore::DeprecationWarning:keras"  # numpy 2 copy= notices from keras internals


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def latest_version(model_root: Path) -> Path:
    """The version folder LATEST names below a model root."""
    return model_root / (model_root / "LATEST").read_text().strip()


def copy_model(model_root: Path, bucket: Path, name: str) -> Path:
    """Copy the LATEST version of `model_root` into `bucket/name`; return the version folder."""
    source = latest_version(model_root)
    target = bucket / name / source.name
    shutil.copytree(source, target)
    (bucket / name / "LATEST").write_text(source.name + "\n")
    return target


class FunctionServer:
    """A real functions-framework process serving one target on 127.0.0.1.

    `source` is the main.py to serve (default functions/main.py); functions/ is on the
    process's PYTHONPATH either way, as the deployed source folder is.
    """

    def __init__(self, target: str, env: dict[str, str], log_path: Path,
                 source: Path = FUNCTIONS_MAIN) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        python_path = os.pathsep.join(
            part for part in (str(FUNCTIONS_MAIN.parent), os.environ.get("PYTHONPATH")) if part)
        full_env = {**os.environ, "PYTHONPATH": python_path, **env}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--source", str(source),
             "--target", target, "--host", "127.0.0.1", "--port", str(self.port)],
            env=full_env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target} exited early:\n{self.logs()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.target} did not answer within {START_TIMEOUT_S} s")

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> FunctionServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total_kb, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def skip_unless_weights_offline() -> None:
    """Skip the calling test when Keras could download the ImageNet weights (it is for offline
    machines, where the download must fail fast with a clear message)."""
    try:
        socket.create_connection(WEIGHTS_HOST, timeout=3).close()
    except OSError:
        return
    pytest.skip(f"{WEIGHTS_HOST[0]} is reachable: this test is for offline machines")


def run_main_here(main: Callable[[Sequence[str]], int], argv: Sequence[str]
                  ) -> tuple[int, str, str]:
    """A command's `main(argv)` in this process: its exit code, stdout and stderr.

    For tests whose process imports TensorFlow anyway: the command as a subprocess would
    import it again (about 3.5 s of CPU each)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(argv))
    return code, stdout.getvalue(), stderr.getvalue()
