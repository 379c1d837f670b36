"""Writing model versions into a bucket folder (the contract in model_bucket/README.md).

A version is written into a hidden staging folder beside its final place, `manifest.json`
last, then renamed into place in one step, and only then does `LATEST` move (temp file +
`os.replace`). A reader therefore sees either no version folder or a complete one. Shared by
every export command (`train.mpg`, the image import); no TensorFlow here.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
LATEST_FILE = "LATEST"
VERSION_FORMAT = "%Y%m%dT%H%M%SZ"
STAGING_PREFIX = ".staging-"
REQUIRED_KEYS = (
    "schema_version",
    "name",
    "version",
    "task",
    "created_at",
    "runtime",
    "files",
    "input",
    "output",
    "training",
    "metrics",
)
HASH_CHUNK_BYTES = 1 << 20
FOLDER_MODE = 0o755
FILE_MODE = 0o644
MAX_VERSION_BUMPS = 3600


class VersionExistsError(FileExistsError):
    """The version folder is already there; versions are never overwritten."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """The manifest's description of one file: `{"sha256": ..., "size": ...}`."""
    return {"sha256": sha256_file(path), "size": Path(path).stat().st_size}


def describe_files(folder: Path) -> dict[str, dict[str, Any]]:
    """`file_entry` for every regular file in `folder` except the manifest, by name."""
    return {
        path.name: file_entry(path)
        for path in sorted(Path(folder).iterdir())
        if path.is_file() and path.name != MANIFEST_FILE
    }


def version_name(moment: datetime | None = None) -> str:
    """The version folder name for `moment` (default now): UTC `%Y%m%dT%H%M%SZ`."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.strftime(VERSION_FORMAT)


def parse_version(version: str) -> datetime:
    """The UTC time a version name stands for (ValueError if it is not one)."""
    return datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=UTC)


def next_version(model_root: Path, moment: datetime | None = None) -> str:
    """A version name for `moment` (default now) that is free under `model_root`.

    When that second's folder exists, it moves on one second at a time, so an export never
    overwrites a version.
    """
    candidate = parse_version(version_name(moment))
    for _ in range(MAX_VERSION_BUMPS):
        name = version_name(candidate)
        if not (Path(model_root) / name).exists():
            return name
        candidate += timedelta(seconds=1)
    raise VersionExistsError(f"no free version name under {model_root} near {candidate}")


@contextlib.contextmanager
def staging_folder(model_root: Path) -> Iterator[Path]:
    """A fresh hidden folder beside the versions, removed on exit unless it was published."""
    root = Path(model_root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    staging.chmod(FOLDER_MODE)  # mkdtemp makes it private; the published version is not
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented UTF-8 JSON with a final newline (temp file + os.replace)."""
    path = Path(path)
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _replace_with_text(path, text)


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Complete `manifest` with the `files` of `folder`, check it, write `manifest.json`.

    Call it after every other file of the version is in `folder`. Returns the manifest as
    written.
    """
    complete = {**manifest, "files": describe_files(folder)}
    missing = [key for key in REQUIRED_KEYS if key not in complete]
    if missing:
        raise ValueError(f"manifest lacks required key(s): {', '.join(missing)}")
    if complete["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"manifest schema_version must be {SCHEMA_VERSION}")
    if complete["version"] != parse_version(complete["version"]).strftime(VERSION_FORMAT):
        raise ValueError(f"manifest version {complete['version']!r} is not {VERSION_FORMAT}")
    model_file = complete["runtime"].get("model_file")
    if model_file not in complete["files"]:
        raise ValueError(f"runtime.model_file {model_file!r} is not in {folder}")
    write_json(Path(folder) / MANIFEST_FILE, complete)
    return complete


def publish_version(staging: Path, model_root: Path, version: str) -> Path:
    """Rename the finished `staging` folder to `<model_root>/<version>` in one step.

    Raises VersionExistsError (and leaves everything as it was) if that folder exists.
    """
    target = Path(model_root) / version
    if target.exists():
        raise VersionExistsError(f"{target} already exists; versions are never overwritten")
    try:
        os.rename(staging, target)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise VersionExistsError(f"{target} appeared while publishing") from error
        raise
    _fsync_dir(Path(model_root))
    return target


PUBLISH_ATTEMPTS = 3


def publish_staged(
    staging: Path,
    model_root: Path,
    build_manifest: Callable[[str, datetime], Mapping[str, Any]],
) -> tuple[Path, dict[str, Any]]:
    """Write the manifest for a free version name, publish the staged folder, move LATEST.

    `build_manifest(version, now)` gives the manifest without `files`. If another export takes
    the same second meanwhile, it tries the next free name (PUBLISH_ATTEMPTS times).
    Returns (version folder, manifest as written).
    """
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        now = datetime.now(UTC)
        version = next_version(model_root, now)
        manifest = write_manifest(staging, build_manifest(version, now))
        try:
            folder = publish_version(staging, model_root, version)
            break
        except VersionExistsError:
            if attempt == PUBLISH_ATTEMPTS:
                raise
    update_latest(model_root, version)
    return folder, manifest


def update_latest(model_root: Path, version: str) -> Path:
    """Point `<model_root>/LATEST` at an existing, complete version (temp file + os.replace)."""
    if not (Path(model_root) / version / MANIFEST_FILE).is_file():
        raise FileNotFoundError(f"{Path(model_root) / version} has no {MANIFEST_FILE}")
    latest = Path(model_root) / LATEST_FILE
    _replace_with_text(latest, version + "\n")
    return latest


def read_latest(model_root: Path) -> str:
    """The version `<model_root>/LATEST` names."""
    return (Path(model_root) / LATEST_FILE).read_text(encoding="utf-8").strip()


def verify_version(folder: Path) -> dict[str, Any]:
    """Load a version's manifest and check every listed file's sha256 and size.

    Returns the manifest; raises ValueError naming the first file that does not match.
    """
    manifest = json.loads((Path(folder) / MANIFEST_FILE).read_text(encoding="utf-8"))
    for name, expected in manifest["files"].items():
        path = Path(folder) / name
        if not path.is_file():
            raise ValueError(f"{path}: listed in the manifest but missing")
        if file_entry(path) != expected:
            raise ValueError(f"{path}: sha256/size differ from the manifest")
    return manifest


def _replace_with_text(path: Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, fsync it, then os.replace it into place."""
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, FILE_MODE)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def _fsync_dir(folder: Path) -> None:
    """Flush a directory entry change (a rename) to disk where the platform allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
