"""`python -m train.publish` against the Cloud Storage emulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import COMMITTED_BUCKET, REPO_ROOT, copy_model
from tests.storage_emulator import StorageEmulator, committed_mpg_version
from train.publish import EXIT_FAILED, EXIT_OK, EXIT_USAGE, SHA256_KEY, parse_args, run

BUCKET = "releases"
PREFIX = "models"
NEXT_VERSION = "20991231T235959Z"
VERSION = committed_mpg_version()
CLI_TIMEOUT_S = 60

pytestmark = pytest.mark.skipif(not VERSION, reason="model_bucket/mpg has no committed version")


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[StorageEmulator]:
    with StorageEmulator(tmp_path / "emulator.log", bucket=BUCKET) as running:
        yield running


@pytest.fixture
def local_bucket(tmp_path: Path) -> Path:
    """A private local bucket with a copy of the committed MPG version."""
    bucket = tmp_path / "model_bucket"
    copy_model(COMMITTED_BUCKET / "mpg", bucket, "mpg")
    return bucket


def publish(emulator: StorageEmulator, local_bucket: Path, *extra: str) -> tuple[int, list[str]]:
    """Run train.publish in this process; its exit code and printed lines."""
    lines: list[str] = []
    argv = ["--bucket", str(local_bucket), "--to", f"gs://{BUCKET}/{PREFIX}", *extra]
    code = run(parse_args(argv), client=emulator.client(), say=lines.append,
               complain=lines.append)
    return code, lines


def remote(emulator: StorageEmulator, name: str):
    return emulator.client().bucket(BUCKET).get_blob(f"{PREFIX}/{name}")


def remote_latest(emulator: StorageEmulator, model: str = "mpg") -> str | None:
    blob = remote(emulator, f"{model}/LATEST")
    return blob.download_as_bytes().decode().strip() if blob else None


def add_version(local_bucket: Path, version: str) -> Path:
    """A second local version (same files, its own name), without moving the local LATEST."""
    folder = local_bucket / "mpg" / version
    shutil.copytree(local_bucket / "mpg" / VERSION, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": version}))
    return folder


def test_cli_uploads_files_then_manifest_last_and_a_second_run_uploads_nothing(
        emulator: StorageEmulator, local_bucket: Path) -> None:
    command = [sys.executable, "-m", "train.publish", "--bucket", str(local_bucket),
               "--to", f"gs://{BUCKET}/{PREFIX}", "--set-latest"]
    env = {**os.environ, "STORAGE_EMULATOR_HOST": emulator.host}
    first = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S, check=False)
    assert first.returncode == EXIT_OK, first.stderr
    uploaded = [line.split()[1] for line in first.stdout.splitlines()
                if line.startswith("  uploaded")]
    listed = json.loads((local_bucket / "mpg" / VERSION / "manifest.json").read_text())["files"]
    assert sorted(uploaded[:-1]) == sorted(listed) and uploaded[-1] == "manifest.json"
    # The bucket agrees: the manifest object was created after every other file.
    blobs = {b.name.rsplit("/", 1)[1]: b for b in
             emulator.client().list_blobs(BUCKET, prefix=f"{PREFIX}/mpg/{VERSION}/")}
    assert max(b.generation for n, b in blobs.items() if n != "manifest.json") < (
        blobs["manifest.json"].generation)
    assert remote_latest(emulator) == VERSION
    assert f"{len(listed) + 1} uploaded" in first.stdout.splitlines()[-1]

    second = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=CLI_TIMEOUT_S, check=False)
    assert second.returncode == EXIT_OK, second.stderr
    assert ": 0 uploaded (0 bytes)" in second.stdout.splitlines()[-1]
    assert "already names" in second.stdout


def test_objects_carry_sha256_and_match_the_local_files(
        emulator: StorageEmulator, local_bucket: Path) -> None:
    assert publish(emulator, local_bucket, "--set-latest")[0] == EXIT_OK
    manifest = json.loads((local_bucket / "mpg" / VERSION / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        blob = remote(emulator, f"mpg/{VERSION}/{name}")
        assert (blob.size, blob.metadata[SHA256_KEY]) == (entry["size"], entry["sha256"])
    model = remote(emulator, f"mpg/{VERSION}/model.tflite").download_as_bytes()
    assert model == (local_bucket / "mpg" / VERSION / "model.tflite").read_bytes()
    assert remote(emulator, "mpg/LATEST").cache_control == "no-cache, max-age=0"


def test_latest_moves_only_with_set_latest(emulator: StorageEmulator,
                                           local_bucket: Path) -> None:
    code, lines = publish(emulator, local_bucket)
    assert code == EXIT_OK and remote_latest(emulator) is None
    assert any("LATEST    unchanged (missing" in line for line in lines)

    assert publish(emulator, local_bucket, "--set-latest")[0] == EXIT_OK
    assert remote_latest(emulator) == VERSION

    add_version(local_bucket, NEXT_VERSION)
    code, lines = publish(emulator, local_bucket, "--model", "mpg", "--version", NEXT_VERSION)
    assert code == EXIT_OK
    assert remote(emulator, f"mpg/{NEXT_VERSION}/manifest.json") is not None
    assert remote_latest(emulator) == VERSION  # published, but not served by the root URI
    assert any(f"unchanged (names {VERSION}" in line for line in lines)

    code, lines = publish(emulator, local_bucket, "--model", "mpg", "--version", NEXT_VERSION,
                          "--set-latest")
    assert code == EXIT_OK and remote_latest(emulator) == NEXT_VERSION
    assert ": 0 uploaded (0 bytes)" in lines[-1]


def test_remote_file_with_other_bytes_is_refused_and_manifest_not_uploaded(
        emulator: StorageEmulator, local_bucket: Path) -> None:
    blob = emulator.client().bucket(BUCKET).blob(f"{PREFIX}/mpg/{VERSION}/model.tflite")
    blob.upload_from_string(b"someone else's model")
    code, lines = publish(emulator, local_bucket, "--set-latest")
    assert code == EXIT_FAILED
    assert "versions are immutable" in lines[-1] and "model.tflite" in lines[-1]
    assert remote(emulator, f"mpg/{VERSION}/manifest.json") is None
    assert remote_latest(emulator) is None

    blob.delete()  # the good run still works once the conflict is gone
    assert publish(emulator, local_bucket, "--set-latest")[0] == EXIT_OK
    assert remote_latest(emulator) == VERSION


def test_local_version_that_fails_its_manifest_is_not_published(
        emulator: StorageEmulator, local_bucket: Path) -> None:
    model = local_bucket / "mpg" / VERSION / "model.tflite"
    original = model.read_bytes()
    model.write_bytes(original[:-1])
    code, lines = publish(emulator, local_bucket)
    assert code == EXIT_FAILED and "is not a complete version" in lines[-1]
    assert list(emulator.client().list_blobs(BUCKET)) == []

    model.write_bytes(original)
    assert publish(emulator, local_bucket)[0] == EXIT_OK


@pytest.mark.parametrize("argv", [
    ["--to", "s3://bucket"],
    ["--to", "gs://bucket/../x"],
    ["--to", "gs://bucket", "--version", NEXT_VERSION],
    ["--to", "gs://bucket", "--model", "mpg", "--model", "image", "--version", NEXT_VERSION],
])
def test_bad_command_lines_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == EXIT_USAGE


def test_default_publishes_mpg_and_image_when_both_are_present(
        emulator: StorageEmulator, local_bucket: Path, colour_model_root: Path) -> None:
    image_folder = copy_model(colour_model_root, local_bucket, "image")
    tflite = image_folder / "model.tflite"
    code, lines = publish(emulator, local_bucket, "--set-latest")
    assert code == EXIT_OK
    assert remote_latest(emulator, "image") == image_folder.name
    assert remote(emulator, f"image/{image_folder.name}/model.tflite").size == (
        tflite.stat().st_size)
    assert lines[-1].startswith(f"published mpg {VERSION}, image {image_folder.name}:")
