"""Cloud Storage as a model source: `gs://bucket/prefix` through the google-cloud-storage client.

Only this module talks to Cloud Storage. It reads small objects (LATEST, manifest.json) into
memory and streams model files into a file handle the caller owns (artifacts.py decides where
the cache lives and verifies sha256). Every request uses the client's bounded retry policy
(transient 5xx, 429, timeouts and connection errors, with exponential back-off up to a total
deadline) and a per-request timeout; downloads are checked with the client's crc32c check.
Errors from the client become ModelError with a short cause naming the URI.

The client library is imported on the first request to the bucket, not with this module: a
pinned version already in the cache loads without it (its import alone costs ~0.3-0.5 s).
"""

from __future__ import annotations

import contextlib
import http
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import ModelError

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud import storage

# Per HTTP request: seconds to connect, seconds between bytes read.
REQUEST_TIMEOUT_S: tuple[float, float] = (5.0, 30.0)
# All attempts at one object together, back-off included; after that the load fails (503)
# and LazyModel's own back-off decides when the next load may start.
RETRY_DEADLINE_S = 20.0
CHECKSUM = "crc32c"
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]")
_BUCKET_MISSING_TEXT = "bucket does not exist"
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] [^'\"\)]+")
_MAX_DETAIL_CHARS = 120

ClientFactory = Callable[[], Any]

# Lives for the whole instance: one client (and its HTTP connection pool) for every load.
_client: Any = None
_client_lock = threading.Lock()


def shared_client() -> storage.Client:
    """The process-wide storage client, created on first use (thread-safe).

    `project=None`: reading objects needs no project, so a missing project id is never an
    error. With STORAGE_EMULATOR_HOST set the client itself talks to the emulator with
    anonymous credentials; otherwise it uses Application Default Credentials.
    """
    global _client
    with _client_lock:
        if _client is None:
            from google.cloud import storage

            _client = storage.Client(project=None)
        return _client


class GcsPrefix:
    """A model root or version folder in a bucket: `gs://bucket/prefix`."""

    def __init__(
        self,
        uri: str,
        cache_dir: Path,
        client: ClientFactory = shared_client,
        retry_deadline_s: float = RETRY_DEADLINE_S,
        request_timeout: float | tuple[float, float] = REQUEST_TIMEOUT_S,
    ) -> None:
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"gs://{bucket}/{self.prefix}" if self.prefix else f"gs://{bucket}"
        self._check_names()
        self.cache_root = Path(cache_dir, bucket, *(self.prefix.split("/") if self.prefix else ()))
        self._client_factory = client
        self._retry_deadline_s = retry_deadline_s
        self._timeout = request_timeout

    def describe(self, path: str) -> str:
        """The gs:// URI of `path` below the prefix."""
        return f"{self.uri}/{path}" if path else self.uri

    def read(self, path: str) -> bytes:
        """The bytes of a small object (LATEST, manifest.json); ModelError if unreadable."""
        with self._translated(path):
            return self._blob(path).download_as_bytes(
                retry=self._retry(), timeout=self._timeout, checksum=CHECKSUM
            )

    def download(self, path: str, handle: BinaryIO) -> None:
        """Stream an object into `handle`; ModelError if it cannot be fetched intact."""
        with self._translated(path):
            self._blob(path).download_to_file(
                handle, retry=self._retry(), timeout=self._timeout, checksum=CHECKSUM
            )

    def cache_folder(self, version_path: str) -> Path:
        """Where the files of a version below this prefix are cached."""
        return self.cache_root / version_path if version_path else self.cache_root

    def _blob(self, path: str) -> storage.Blob:
        name = f"{self.prefix}/{path}" if self.prefix and path else (self.prefix or path)
        return self._client_factory().bucket(self.bucket_name).blob(name)

    def _retry(self) -> Retry:
        """The client's default policy (what it retries, back-off) bounded by our deadline."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self._retry_deadline_s)

    def _check_names(self) -> None:
        # The bucket and prefix become cache folders: no traversal, nothing odd.
        if not _BUCKET_NAME.fullmatch(self.bucket_name):
            raise ModelError(f"{self.uri}: {self.bucket_name!r} is not a bucket name")
        if self.prefix and any(part in ("", ".", "..") for part in self.prefix.split("/")):
            raise ModelError(f"{self.uri}: the path has empty, '.' or '..' parts")

    @contextlib.contextmanager
    def _translated(self, path: str) -> Iterator[None]:
        """Turn the client's exceptions into ModelError with a cause a person can act on."""
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions
        from google.cloud.storage.exceptions import DataCorruption

        uri = self.describe(path)
        try:
            yield
        except ModelError:
            raise
        except api_exceptions.NotFound as exc:
            raise ModelError(self._not_found(uri, exc)) from None
        except (api_exceptions.Forbidden, api_exceptions.Unauthorized) as exc:
            raise ModelError(
                f"{uri}: permission denied ({exc.code}); the function's service account "
                f"needs roles/storage.objectViewer on gs://{self.bucket_name}"
            ) from None
        except DataCorruption:
            raise ModelError(
                f"{uri}: crc32c mismatch, the download was corrupted; discarded"
            ) from None
        except api_exceptions.RetryError as exc:
            cause = describe_transient(exc.cause) if exc.cause else "no answer"
            raise ModelError(
                f"{uri}: {cause} (gave up after {self._retry_deadline_s:g} s of retries)"
            ) from None
        except auth_exceptions.GoogleAuthError as exc:
            raise ModelError(
                f"{uri}: no usable Google Cloud credentials ({_short(str(exc))})"
            ) from None
        except Exception as exc:  # anything else the client raises: transient or not
            raise ModelError(f"{uri}: {describe_transient(exc)}") from None

    def _not_found(self, uri: str, exc: Exception) -> str:
        """'bucket not found' when the bucket is missing, else 'object not found'."""
        if _BUCKET_MISSING_TEXT in str(exc).lower() or not self._bucket_exists():
            return f"gs://{self.bucket_name}: bucket not found"
        return f"{uri}: object not found"

    def _bucket_exists(self) -> bool:
        """False only when the bucket is certainly missing (a probe that fails says True)."""
        try:
            return bool(
                self._client_factory()
                .bucket(self.bucket_name)
                .exists(retry=None, timeout=self._timeout)
            )
        except Exception:  # e.g. no storage.buckets.get permission: say "object not found"
            return True


def describe_transient(exc: BaseException) -> str:
    """A short cause for a network or server error: unreachable, timed out, HTTP status."""
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.cloud.storage.exceptions import InvalidResponse

    if isinstance(exc, requests.ConnectTimeout):
        return f"storage unreachable: connect timed out ({_short(str(exc))})"
    if isinstance(exc, requests.Timeout):
        return "storage timed out: no answer within the request timeout"
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        return f"storage unreachable: {_short(str(exc))}"
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return f"storage error {exc.code}: {_short(str(exc.message))}"
    if isinstance(exc, InvalidResponse):  # how a retried download reports an HTTP status
        return f"storage error {_status(exc.response.status_code)}"
    return f"{type(exc).__name__}: {_short(str(exc))}"


def _status(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _short(text: str) -> str:
    """The useful part of a long client message: its `[Errno N] ...` if any, else its start."""
    match = _ERRNO_TEXT.search(text)
    detail = match.group(0) if match else text
    return detail.strip()[:_MAX_DETAIL_CHARS]
