"""Publish local model versions to a Cloud Storage bucket.

    python -m train.publish --to gs://BUCKET[/prefix] [--bucket model_bucket]
                            [--model mpg|image ...] [--version V] [--set-latest]

For each model (default: `mpg` and `image`, where the local bucket has them) the version the
local LATEST names (or `--version`) is checked against its manifest, then uploaded to
`gs://BUCKET/prefix/<model>/<version>/`: the listed files first, `manifest.json` last, so a
reader never finds a manifest whose files are not all there. An object already there with the
same size and sha256 (kept in the object's metadata; md5/crc32c otherwise) is skipped, so a
second run uploads nothing; one that differs is an error, because versions are immutable.
Every upload is checked afterwards (remote size, crc32c, md5 and sha256 metadata).
The remote `LATEST` changes only with `--set-latest`.
Exit codes: 0 done, 1 failed (nothing is pointed at a half-published version), 2 usage.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import mimetypes
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import google_crc32c
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from modelserve.contract import HASH_CHUNK_BYTES, LATEST_FILE, MANIFEST_FILE, verify_folder
from modelserve.errors import ModelError
from train.bucket import read_latest

DEFAULT_BUCKET = Path("model_bucket")
DEFAULT_MODELS = ("mpg", "image")
SHA256_KEY = "sha256"  # custom object metadata: the sha256 the manifest lists
REQUEST_TIMEOUT_S: tuple[float, float] = (10.0, 120.0)  # connect, read
RETRY_DEADLINE_S = 120.0
LATEST_CACHE_CONTROL = "no-cache, max-age=0"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]")

Say = Callable[[str], None]


class PublishError(RuntimeError):
    """Publishing cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class LocalFile:
    """A file of a local version with the checksums Cloud Storage reports."""

    name: str
    path: Path
    size: int
    sha256: str
    md5: str  # base64, as in the object's md5Hash
    crc32c: str  # base64, as in the object's crc32c

    @classmethod
    def of(cls, path: Path) -> LocalFile:
        sha256, md5, crc = hashlib.sha256(), hashlib.md5(), google_crc32c.Checksum()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
                sha256.update(chunk)
                md5.update(chunk)
                crc.update(chunk)
        return cls(
            name=path.name,
            path=path,
            size=path.stat().st_size,
            sha256=sha256.hexdigest(),
            md5=base64.b64encode(md5.digest()).decode("ascii"),
            crc32c=base64.b64encode(crc.digest()).decode("ascii"),
        )


@dataclass
class Outcome:
    """What publishing one version did."""

    model: str
    version: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    latest: str = ""


@dataclass(frozen=True)
class Target:
    """Where versions go: a bucket and an optional prefix (`gs://bucket/prefix`)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> Target:
        if not uri.startswith("gs://"):
            raise ValueError(f"{uri!r} is not a gs://bucket[/prefix] URI")
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        prefix = prefix.strip("/")
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ValueError(f"{bucket!r} is not a bucket name")
        if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
            raise ValueError(f"prefix {prefix!r} has empty, '.' or '..' parts")
        return cls(bucket, prefix)

    def object_name(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts) if self.prefix else parts)

    def uri(self, *parts: str) -> str:
        return f"gs://{self.bucket}/{self.object_name(*parts)}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m train.publish", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--to", required=True, type=_target, help="gs://BUCKET[/prefix]")
    parser.add_argument(
        "--bucket", type=Path, default=DEFAULT_BUCKET, help="local bucket folder (model_bucket)"
    )
    parser.add_argument(
        "--model",
        action="append",
        type=_model_name,
        help="model to publish; repeatable (default: mpg and image, where present)",
    )
    parser.add_argument("--version", help="version to publish (default: what LATEST names)")
    parser.add_argument(
        "--set-latest", action="store_true", help="point the remote LATEST at the version"
    )
    parser.add_argument("--project", help="project for the storage client (usually not needed)")
    args = parser.parse_args(argv)
    if args.version and (not args.model or len(args.model) != 1):
        parser.error("--version needs exactly one --model")
    return args


def chosen_models(local_bucket: Path, models: Sequence[str] | None) -> list[str]:
    """The models to publish: those asked for (which must exist), else the defaults present."""
    if models:
        missing = [m for m in models if not (local_bucket / m / LATEST_FILE).is_file()]
        if missing:
            raise PublishError(f"{local_bucket} has no model {', '.join(missing)} (no LATEST)")
        return list(dict.fromkeys(models))
    present = [m for m in DEFAULT_MODELS if (local_bucket / m / LATEST_FILE).is_file()]
    if not present:
        raise PublishError(f"{local_bucket} holds none of {', '.join(DEFAULT_MODELS)}")
    return present


def local_version(local_bucket: Path, model: str, version: str | None) -> list[LocalFile]:
    """The files of a checked local version, in upload order: manifest.json last."""
    version = version or read_latest(local_bucket / model)
    folder = local_bucket / model / version
    if not folder.is_dir():
        raise PublishError(f"{folder} does not exist")
    try:
        manifest = verify_folder(folder)
    except ModelError as exc:
        raise PublishError(f"{folder} is not a complete version: {exc}") from None
    if manifest.version != version:
        raise PublishError(f"{folder}/{MANIFEST_FILE} names version {manifest.version!r}")
    names = sorted(manifest.files)
    return [LocalFile.of(folder / name) for name in (*names, MANIFEST_FILE)]


class Publisher:
    """Uploads versions to one bucket with bounded retries, skipping what is already there."""

    def __init__(self, client: storage.Client, target: Target, say: Say = print) -> None:
        self.target = target
        self.bucket = client.bucket(target.bucket)
        self.say = say
        self._retry = DEFAULT_RETRY.with_timeout(RETRY_DEADLINE_S)

    def publish(self, model: str, files: Sequence[LocalFile], set_latest: bool) -> Outcome:
        """Upload one version (files in the given order) and, if asked, move LATEST."""
        version = files[-1].path.parent.name
        outcome = Outcome(model, version)
        self.say(f"{model} {version} -> {self.target.uri(model, version)}/")
        for local in files:
            name = self.target.object_name(model, version, local.name)
            if self._already_there(name, local):
                outcome.skipped.append(local.name)
                self.say(f"  skipped   {local.name} (same size and sha256 already there)")
                continue
            self._upload(name, local)
            outcome.uploaded.append(local.name)
            outcome.uploaded_bytes += local.size
            self.say(f"  uploaded  {local.name} ({local.size} bytes, verified)")
        outcome.latest = self._latest(model, version, set_latest)
        self.say(f"  LATEST    {outcome.latest}")
        return outcome

    def _already_there(self, name: str, local: LocalFile) -> bool:
        remote = self.bucket.get_blob(name, retry=self._retry, timeout=REQUEST_TIMEOUT_S)
        if remote is None:
            return False
        difference = _difference(remote, local)
        if difference:
            raise PublishError(
                f"gs://{self.bucket.name}/{name} already exists with other content "
                f"({difference}); versions are immutable: export a new version"
            )
        return True

    def _upload(self, name: str, local: LocalFile) -> None:
        blob = self.bucket.blob(name)
        blob.metadata = {SHA256_KEY: local.sha256}
        try:
            # if_generation_match=0: create only, never overwrite; it also makes retries safe.
            blob.upload_from_filename(
                str(local.path),
                content_type=mimetypes.guess_type(local.name)[0] or DEFAULT_CONTENT_TYPE,
                if_generation_match=0,
                checksum="crc32c",
                retry=self._retry,
                timeout=REQUEST_TIMEOUT_S,
            )
        except api_exceptions.PreconditionFailed:
            if self._already_there(name, local):  # another run uploaded it meanwhile
                return
        self._verify(name, local)

    def _verify(self, name: str, local: LocalFile) -> None:
        remote = self.bucket.get_blob(name, retry=self._retry, timeout=REQUEST_TIMEOUT_S)
        difference = "it is missing" if remote is None else _difference(remote, local)
        if difference:
            raise PublishError(f"gs://{self.bucket.name}/{name} after upload: {difference}")

    def _latest(self, model: str, version: str, set_latest: bool) -> str:
        """Move LATEST if asked (only now that the manifest is verified); say what it names."""
        blob = self.bucket.get_blob(
            self.target.object_name(model, LATEST_FILE), retry=self._retry,
            timeout=REQUEST_TIMEOUT_S,
        )
        current = (
            blob.download_as_bytes(retry=self._retry, timeout=REQUEST_TIMEOUT_S).decode().strip()
            if blob is not None
            else None
        )
        if not set_latest:
            names = f"names {current}" if current else "missing: the model root serves nothing"
            return f"unchanged ({names}; --set-latest moves it to {version})"
        if current == version:
            return f"already names {version}"
        latest = self.bucket.blob(self.target.object_name(model, LATEST_FILE))
        latest.cache_control = LATEST_CACHE_CONTROL
        latest.upload_from_string(
            version + "\n",
            content_type="text/plain",
            # Only replace the LATEST we read: two publishers cannot silently undo each other.
            if_generation_match=blob.generation if blob is not None else 0,
            retry=self._retry,
            timeout=REQUEST_TIMEOUT_S,
        )
        return f"moved {current or '(none)'} -> {version}"


def _difference(remote: storage.Blob, local: LocalFile) -> str:
    """'' when the remote object holds the local file's bytes, else what differs."""
    if remote.size != local.size:
        return f"size {remote.size}, local {local.size}"
    sha256 = (remote.metadata or {}).get(SHA256_KEY)
    if sha256 is not None and sha256 != local.sha256:
        return f"sha256 {sha256[:12]}..., local {local.sha256[:12]}..."
    if remote.md5_hash is not None and remote.md5_hash != local.md5:
        return f"md5 {remote.md5_hash}, local {local.md5}"
    if remote.crc32c != local.crc32c:
        return f"crc32c {remote.crc32c}, local {local.crc32c}"
    return ""


def run(
    args: argparse.Namespace,
    client: storage.Client | None = None,
    say: Say = print,
    complain: Say = print,
) -> int:
    """Publish what `args` asks for; `say` each file and a summary, `complain` errors."""
    try:
        models = chosen_models(args.bucket, args.model)
        versions = {model: local_version(args.bucket, model, args.version) for model in models}
        publisher = Publisher(client or storage.Client(project=args.project), args.to, say)
        outcomes = [publisher.publish(m, files, args.set_latest) for m, files in versions.items()]
    except PublishError as exc:
        complain(f"error: {exc}")
        return EXIT_FAILED
    except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
        complain(f"error: Cloud Storage: {exc}")
        return EXIT_FAILED
    except (auth_exceptions.GoogleAuthError, requests.RequestException) as exc:
        complain(f"error: cannot reach Cloud Storage: {exc}")
        return EXIT_FAILED
    say(summary(outcomes))
    return EXIT_OK


def summary(outcomes: Sequence[Outcome]) -> str:
    """One line: what was uploaded and skipped over all versions."""
    uploaded = sum(len(o.uploaded) for o in outcomes)
    skipped = sum(len(o.skipped) for o in outcomes)
    size = sum(o.uploaded_bytes for o in outcomes)
    versions = ", ".join(f"{o.model} {o.version}" for o in outcomes)
    return f"published {versions}: {uploaded} uploaded ({size} bytes), {skipped} skipped"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m train.publish`."""
    return run(parse_args(argv), say=_print_now, complain=_print_error)


def _target(text: str) -> Target:
    try:
        return Target.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_name(text: str) -> str:
    if not _MODEL_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a model name")
    return text


def _print_now(message: str) -> None:
    print(message, flush=True)


def _print_error(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
