"""Cloud Storage as a model source: `gs://bucket/prefix`, read through the JSON API.

Only this module talks to Cloud Storage, and only to read: LATEST and manifest.json into
memory, model files streamed into a file handle the caller owns (artifacts.py decides where the
cache lives and verifies sha256). It is the serving side's lean read path: the standard
library's http.client (already imported by the framework) with one kept-alive connection, and
google-auth's Application Default Credentials only when a token is needed (on Cloud Run and
in Cloud Build the metadata server's token, read directly: MetadataCredentials). The official
google-cloud-storage client (~0.3-0.5 s to import and create, most of a cold start from gs://;
benchmarks/RESULTS.md) stays for publishing (train/) and everything else.

What the client gave and this keeps: retries of transient failures (408, 429, 5xx, timeouts,
dropped connections) with exponential back-off and jitter up to a total deadline, a timeout on
every request (connect, then between bytes), the crc32c (else md5) that Cloud Storage sends in
`X-Goog-Hash` checked on every download, STORAGE_EMULATOR_HOST (then anonymous, as the client
does), and the same credentials on Cloud Run, locally and in Cloud Build (ADC, default_reader).
Errors become ModelError with a short cause naming the URI.
"""

from __future__ import annotations

import base64
import hashlib
import http
import http.client
import json
import os
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelError

# Per HTTP request: seconds to connect, seconds between bytes read.
REQUEST_TIMEOUT_S: tuple[float, float] = (5.0, 30.0)
# All attempts at one object together, back-off included; after that the load fails (503)
# and LazyModel's own back-off decides when the next load may start.
RETRY_DEADLINE_S = 20.0
# The client library's default back-off (google.cloud.storage.retry.DEFAULT_RETRY).
BACKOFF_INITIAL_S = 1.0
BACKOFF_MULTIPLIER = 2.0
BACKOFF_MAX_S = 60.0
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CHECKSUM = "crc32c"
PUBLIC_ENDPOINT = "https://storage.googleapis.com"
EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST"
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
METADATA_HOST_VARIABLE = "GCE_METADATA_HOST"  # google-auth's override, honoured the same way
METADATA_HOST = "metadata.google.internal"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
METADATA_TIMEOUT_S = 3.0  # google-auth's default for the metadata server
TOKEN_REFRESH_MARGIN_S = 60.0  # refresh a token this long before it expires
CHUNK_BYTES = 1 << 20
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]")
_BUCKET_MISSING_TEXT = "bucket does not exist"
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] [^'\"\)]+")
_MAX_DETAIL_CHARS = 120
_MAX_ERROR_BODY_BYTES = 4096

ClientFactory = Callable[[], "StorageReader"]


class _Transient(Exception):
    """A failure worth another attempt: a retried status, a timeout, a dropped connection."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class _Status(Exception):
    """A final HTTP status from Cloud Storage (not retried)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Corrupt(Exception):
    """The bytes received do not match the checksum Cloud Storage sent."""

    def __init__(self, algorithm: str) -> None:
        super().__init__(algorithm)
        self.algorithm = algorithm


class _AuthFailed(Exception):
    """Credentials could not give a token (google.auth's refresh failed)."""


class _AuthTransport:
    """google.auth's transport interface (`google.auth.transport.Request`) over http.client:
    what credentials use to fetch a token (the metadata server, oauth2.googleapis.com)."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float | None = None,
                 **_: Any) -> _AuthResponse:
        parts = urllib.parse.urlsplit(url)
        connection = _connect(parts.scheme, parts.netloc, timeout or self._timeout_s)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(method, target or "/", body=body, headers=headers or {})
            answer = connection.getresponse()
            return _AuthResponse(answer.status, dict(answer.getheaders()), answer.read())
        except (OSError, http.client.HTTPException) as exc:
            from google.auth import exceptions

            raise exceptions.TransportError(str(exc)) from exc
        finally:
            connection.close()


class _AuthResponse:
    """google.auth.transport.Response: status, headers, data."""

    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.status, self.headers, self.data = status, headers, data


class StorageReader:
    """Reads objects through Cloud Storage's JSON API; one per process (`shared_client`).

    `endpoint` is the API's base URL; `credentials` None means anonymous (the emulator).
    Thread-safe: each read takes a kept-alive connection from a small pool or opens one.
    """

    def __init__(self, endpoint: str, credentials: Any = None,
                 auth_timeout_s: float = REQUEST_TIMEOUT_S[1]) -> None:
        parts = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.endpoint = f"{self.scheme}://{self.netloc}"
        self._credentials = credentials
        self._auth_transport = _AuthTransport(auth_timeout_s)
        self._auth_lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self._idle_lock = threading.Lock()

    def get(self, path: str, handle: BinaryIO | None, timeout: tuple[float, float]) -> int:
        """One GET of `path` (below the endpoint): 200's body into `handle`, checksum checked.

        Raises _Transient, _Status, _Corrupt or _AuthFailed; returns the bytes written. A
        kept-alive connection the server has closed meanwhile is replaced once, at no cost.
        """
        headers = {"Accept-Encoding": "identity", **self._auth_headers(path)}
        connection, reused = self._take(timeout[0])
        reusable = False
        try:
            if connection.sock is None:
                connection.connect()  # within the connect timeout
            _set_read_timeout(connection, timeout[1])
            try:
                connection.request("GET", path, headers=headers)
                answer = connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                connection.close()  # stale keep-alive connection: reconnect once
                connection.connect()
                _set_read_timeout(connection, timeout[1])
                connection.request("GET", path, headers=headers)
                answer = connection.getresponse()
            if answer.status != http.HTTPStatus.OK:
                message = _error_message(answer.read(_MAX_ERROR_BODY_BYTES))
                reusable = answer.isclosed() and not answer.will_close
                if answer.status in RETRIED_STATUSES:
                    raise _Transient(f"storage error {_status(answer.status)}")
                raise _Status(answer.status, message)
            written = _copy_checked(answer, handle)
            reusable = not answer.will_close
            return written
        except TimeoutError as exc:  # socket.timeout: connect or read
            raise _Transient("storage timed out: no answer within the request timeout") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"storage unreachable: {_short(str(exc) or type(exc).__name__)}"
                             ) from exc
        finally:
            self._give_back(connection, reusable)

    def _auth_headers(self, path: str) -> dict[str, str]:
        if self._credentials is None:
            return {}
        headers: dict[str, str] = {}
        try:
            with self._auth_lock:  # one token refresh at a time
                self._credentials.before_request(self._auth_transport, "GET",
                                                 self.endpoint + path, headers)
        except Exception as exc:  # google.auth's RefreshError, TransportError
            raise _AuthFailed(_short(str(exc))) from exc
        return headers

    def _take(self, connect_timeout_s: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle kept-alive connection (True), else a new one (False)."""
        with self._idle_lock:
            if self._idle:
                return self._idle.pop(), True
        return _connect(self.scheme, self.netloc, connect_timeout_s), False

    def _give_back(self, connection: http.client.HTTPConnection, reusable: bool) -> None:
        if not reusable:
            connection.close()
            return
        with self._idle_lock:
            self._idle.append(connection)


def _connect(scheme: str, netloc: str, timeout_s: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(netloc, timeout=timeout_s, context=_tls_context())
    return http.client.HTTPConnection(netloc, timeout=timeout_s)


_tls = None  # lives for the instance: the TLS context with its CA bundle, loaded once
_tls_lock = threading.Lock()


def _tls_context() -> Any:
    """certifi's CA bundle if installed (as requests uses), else the system's."""
    global _tls
    with _tls_lock:
        if _tls is None:
            import ssl

            try:
                import certifi

                _tls = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                _tls = ssl.create_default_context()
        return _tls


def _set_read_timeout(connection: http.client.HTTPConnection, timeout_s: float) -> None:
    if connection.sock is not None:
        connection.sock.settimeout(timeout_s)


def _copy_checked(answer: http.client.HTTPResponse, handle: BinaryIO | None) -> int:
    """Stream the body into `handle`, checking the crc32c (else md5) of `X-Goog-Hash`."""
    expected = _goog_hashes(answer.getheader("X-Goog-Hash", ""))
    algorithm = CHECKSUM if CHECKSUM in expected else ("md5" if "md5" in expected else None)
    digest = _Crc32c() if algorithm == CHECKSUM else hashlib.md5() if algorithm else None
    written = 0
    while chunk := answer.read(CHUNK_BYTES):
        if digest is not None:
            digest.update(chunk)
        if handle is not None:
            handle.write(chunk)
        written += len(chunk)
    if algorithm and digest is not None and digest.digest() != expected[algorithm]:
        raise _Corrupt(algorithm)
    return written


def _goog_hashes(header: str) -> dict[str, bytes]:
    """`crc32c=...,md5=...` (base64) as {algorithm: digest}; unparsable parts are skipped."""
    hashes = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        try:
            hashes[name.lower()] = base64.b64decode(value, validate=True)
        except ValueError:
            continue
    return hashes


class _Crc32c:
    """google_crc32c's running checksum (its C extension; imported on first use)."""

    def __init__(self) -> None:
        import google_crc32c

        self._checksum = google_crc32c.Checksum()

    def update(self, chunk: bytes) -> None:
        self._checksum.update(chunk)

    def digest(self) -> bytes:
        return self._checksum.digest()


def _error_message(body: bytes) -> str:
    """The `error.message` of a JSON API error body, else its text."""
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()


class MetadataCredentials:
    """The instance's service account token from the metadata server (Cloud Run, Cloud
    Functions, Cloud Build, Compute Engine), fetched as google.auth.compute_engine.Credentials
    fetches it, without importing that module (it brings requests and cryptography: ~0.25 s).
    Implements what StorageReader uses of google.auth's Credentials: before_request."""

    def __init__(self, host: str = METADATA_HOST, timeout_s: float = METADATA_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = f"http://{host}{METADATA_TOKEN_PATH}"
        self._transport = _AuthTransport(timeout_s)
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0

    def refresh(self) -> None:
        """Fetch a new token; _AuthFailed if the metadata server does not give one."""
        try:
            answer = self._transport(self._url, headers={"Metadata-Flavor": "Google"})
        except Exception as exc:  # google.auth.exceptions.TransportError
            raise _AuthFailed(f"metadata server unreachable: {_short(str(exc))}") from None
        if answer.status != http.HTTPStatus.OK:
            raise _AuthFailed(f"metadata server answered {_status(answer.status)}")
        try:
            data = json.loads(answer.data)
            token, lifetime = str(data["access_token"]), float(data["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise _AuthFailed("metadata server sent no access token") from None
        self._token = token
        self._refresh_at = self._clock() + lifetime - TOKEN_REFRESH_MARGIN_S

    def before_request(self, request: object, method: str, url: str,
                       headers: dict[str, str]) -> None:
        if self._token is None or self._clock() >= self._refresh_at:
            self.refresh()
        headers["Authorization"] = f"Bearer {self._token}"


def _adc_file(environ: Any) -> Path:
    """Where `gcloud auth application-default login` writes the user's credentials."""
    config = environ.get("CLOUDSDK_CONFIG") or Path(environ.get("HOME", "~"), ".config",
                                                    "gcloud")
    return Path(config).expanduser() / "application_default_credentials.json"


def default_reader(environ: Any = os.environ) -> StorageReader:
    """A reader as the client library would configure itself: the emulator, anonymous, when
    STORAGE_EMULATOR_HOST is set; else the public endpoint with Application Default
    Credentials, found in google.auth.default's order: GOOGLE_APPLICATION_CREDENTIALS, the
    user's gcloud credentials, then the metadata server (the service account on Cloud Run
    and in Cloud Build; read directly, see MetadataCredentials)."""
    emulator = environ.get(EMULATOR_VARIABLE)
    if emulator:
        return StorageReader(emulator)
    if not environ.get("GOOGLE_APPLICATION_CREDENTIALS") and not _adc_file(environ).is_file():
        metadata = MetadataCredentials(environ.get(METADATA_HOST_VARIABLE) or METADATA_HOST)
        try:
            metadata.refresh()
            return StorageReader(PUBLIC_ENDPOINT, metadata)
        except _AuthFailed:
            pass  # not on Google Cloud: google.auth.default looks further, or says what is wrong
    import google.auth

    credentials, _ = google.auth.default(scopes=[READ_ONLY_SCOPE],
                                         request=_AuthTransport(REQUEST_TIMEOUT_S[1]))
    return StorageReader(PUBLIC_ENDPOINT, credentials)


# Lives for the whole instance: one reader (its credentials and kept-alive connection).
_client: StorageReader | None = None
_client_lock = threading.Lock()


def shared_client() -> StorageReader:
    """The process-wide reader, created on first use (thread-safe)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = default_reader()
        return _client


class GcsPrefix:
    """A model root or version folder in a bucket: `gs://bucket/prefix`."""

    def __init__(
        self,
        uri: str,
        cache_dir: Path,
        client: ClientFactory = shared_client,
        retry_deadline_s: float = RETRY_DEADLINE_S,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT_S,
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
        import io

        buffer = io.BytesIO()
        self.download(path, buffer)
        return buffer.getvalue()

    def download(self, path: str, handle: BinaryIO) -> None:
        """Stream an object into `handle`; ModelError if it cannot be fetched intact."""
        name = f"{self.prefix}/{path}" if self.prefix and path else (self.prefix or path)
        url = (f"/download/storage/v1/b/{self.bucket_name}/o/"
               f"{urllib.parse.quote(name, safe='')}?alt=media")
        start = handle.tell()
        uri = self.describe(path)

        def attempt() -> None:
            handle.seek(start)
            handle.truncate()
            self._reader().get(url, handle, self._timeout)

        try:
            self._with_retries(uri, attempt)
        except _Status as exc:
            raise ModelError(self._final_status(uri, exc)) from None
        except _Corrupt as exc:
            raise ModelError(
                f"{uri}: {exc.algorithm} mismatch, the download was corrupted; discarded"
            ) from None
        except _AuthFailed as exc:
            raise ModelError(f"{uri}: no usable Google Cloud credentials ({exc})") from None

    def cache_folder(self, version_path: str) -> Path:
        """Where the files of a version below this prefix are cached."""
        return self.cache_root / version_path if version_path else self.cache_root

    def _reader(self) -> StorageReader:
        try:
            return self._client_factory()
        except ModelError:
            raise
        except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and kin
            raise ModelError(
                f"{self.uri}: no usable Google Cloud credentials ({_short(str(exc))})"
            ) from None

    def _with_retries(self, uri: str, attempt: Callable[[], None]) -> None:
        """Run `attempt`, retrying _Transient with back-off until the deadline."""
        deadline = time.monotonic() + self._retry_deadline_s
        delay = BACKOFF_INITIAL_S
        while True:
            try:
                attempt()
                return
            except _Transient as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ModelError(
                        f"{uri}: {exc.cause} "
                        f"(gave up after {self._retry_deadline_s:g} s of retries)"
                    ) from None
                time.sleep(min(left, random.uniform(0, delay)))  # full jitter, as the client
                delay = min(delay * BACKOFF_MULTIPLIER, BACKOFF_MAX_S)

    def _final_status(self, uri: str, exc: _Status) -> str:
        if exc.status == http.HTTPStatus.NOT_FOUND:
            return self._not_found(uri, exc.message)
        if exc.status in (http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.FORBIDDEN):
            return (f"{uri}: permission denied ({exc.status}); the function's service account "
                    f"needs roles/storage.objectViewer on gs://{self.bucket_name}")
        return f"{uri}: storage error {_status(exc.status)}: {_short(exc.message)}"

    def _not_found(self, uri: str, message: str) -> str:
        """'bucket not found' when the bucket is missing, else 'object not found'."""
        if _BUCKET_MISSING_TEXT in message.lower() or not self._bucket_exists():
            return f"gs://{self.bucket_name}: bucket not found"
        return f"{uri}: object not found"

    def _bucket_exists(self) -> bool:
        """False only when the bucket is certainly missing (a probe that fails says True)."""
        try:
            self._reader().get(f"/storage/v1/b/{self.bucket_name}", None, self._timeout)
        except _Status as exc:
            return exc.status != http.HTTPStatus.NOT_FOUND
        except Exception:  # e.g. no storage.buckets.get permission: say "object not found"
            return True
        return True

    def _check_names(self) -> None:
        # The bucket and prefix become cache folders: no traversal, nothing odd.
        if not _BUCKET_NAME.fullmatch(self.bucket_name):
            raise ModelError(f"{self.uri}: {self.bucket_name!r} is not a bucket name")
        if self.prefix and any(part in ("", ".", "..") for part in self.prefix.split("/")):
            raise ModelError(f"{self.uri}: the path has empty, '.' or '..' parts")


def _status(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _short(text: str) -> str:
    """The useful part of a long message: its `[Errno N] ...` if any, else its start."""
    match = _ERRNO_TEXT.search(text)
    detail = match.group(0) if match else text
    return detail.strip()[:_MAX_DETAIL_CHARS]

