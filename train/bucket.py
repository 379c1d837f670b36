"""Writing model versions into a bucket folder (the contract in model_bucket/README.md).

A version is written into a hidden staging folder beside its final place, `manifest.json`
last, then renamed into place in one step, and only then does `LATEST` move (temp file +
`os.replace`). A reader therefore sees either no version folder or a complete one. Shared by
every export command (`train.mpg`, the image import); no TensorFlow here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelserve.contract import (
    LATEST_FILE,
    MANIFEST_FILE,
    complete_manifest,
    manifest_bytes,
    parse_version,
    version_name,
)

STAGING_PREFIX = ".staging-"
FOLDER_MODE = 0o755
FILE_MODE = 0o644
MAX_VERSION_BUMPS = 3600


class VersionExistsError(FileExistsError):
    """The version folder is already there; versions are never overwritten."""


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
    """Write `data` as the contract writes JSON (temp file + os.replace)."""
    _replace_with_text(Path(path), manifest_bytes(data).decode("utf-8"))


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Complete `manifest` with the `files` of `folder`, check it (modelserve.contract), write
    `manifest.json`. Call it after every other file of the version is in `folder`.

    Returns the manifest as written; ValueError if it breaks the contract.
    """
    complete = complete_manifest(folder, manifest)
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
