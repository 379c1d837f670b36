"""The Cloud Storage emulator (gcp-storage-emulator) as a real HTTP server for tests.

    with StorageEmulator(tmp_path / "emulator.log", bucket="models") as emulator:
        env = {"STORAGE_EMULATOR_HOST": emulator.host}

It runs in its own process on a free loopback port, in memory, and logs every request it
serves (one line each, e.g. `"GET /download/storage/v1/b/models/o/mpg%2F...?alt=media
HTTP/1.1" 200 -`), so tests can count what a function fetched. Always stopped on exit.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.helpers import COMMITTED_BUCKET, free_port

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05
_DOWNLOAD = re.compile(r'"GET /download/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>[^? ]+)')


class StorageEmulator:
    """One gcp-storage-emulator process; `host` is the value for STORAGE_EMULATOR_HOST."""

    def __init__(self, log_path: Path, bucket: str | None = None) -> None:
        self.log_path = log_path
        self.bucket = bucket
        self.port = free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log = None

    def start(self) -> StorageEmulator:
        """Start the process and wait until it answers its health check."""
        command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                   "--port", str(self.port), "--in-memory"]
        if self.bucket:
            command += ["--default-bucket", self.bucket]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"storage emulator exited early:\n{self.logs()}")
            try:
                if requests.get(self.host, timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(POLL_INTERVAL_S)
        self.stop()
        raise RuntimeError(f"storage emulator did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop the process (its in-memory objects are gone); safe to call twice."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def logs(self) -> str:
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def downloads(self, name_suffix: str = "") -> list[str]:
        """Object names downloaded so far (URL-decoded), oldest first, ending in `name_suffix`."""
        names = [requests.utils.unquote(m["name"]) for m in _DOWNLOAD.finditer(self.logs())]
        return [name for name in names if name.endswith(name_suffix)]

    def client(self) -> storage.Client:
        """A real storage client talking to this emulator (independent of the environment)."""
        return storage.Client(project=None, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.host})

    def __enter__(self) -> StorageEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def committed_mpg_version() -> str:
    """The version model_bucket/mpg/LATEST names; '' while nothing is committed."""
    latest = COMMITTED_BUCKET / "mpg" / "LATEST"
    return latest.read_text().strip() if latest.is_file() else ""
