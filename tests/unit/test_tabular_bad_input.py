"""train.tabular and train.image finetune refuse unusable input: exit 2, a message naming the
column, the file or the class, no traceback, nothing written to the bucket (no TensorFlow:
every refusal here happens before it loads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modelserve.contract import TASK_CLASSIFICATION
from tests.helpers import REPO_ROOT
from train import image, tabular
from train.image_photos import load_photos, skipped_text
from train.tabular_data import MISSING_DROP, TableRequest, prepare


def table(folder: Path, **columns: list) -> Path:
    """A CSV of 12 rows: x (numbers), colour (text), y (numbers), with overrides."""
    data = {"x": [float(i) for i in range(12)], "colour": ["red", "green"] * 6,
            "y": [i * 1.5 for i in range(12)], **columns}
    path = folder / "data.csv"
    pd.DataFrame(data).to_csv(path, index=False)
    return path


def refused(capsys: pytest.CaptureFixture[str], bucket: Path, *argv: str) -> str:
    """Run train.tabular in-process: it must exit 2 and write nothing; its error line."""
    code = tabular.main([*argv, "--bucket", str(bucket), "--quiet"])
    error = capsys.readouterr().err
    assert code == tabular.EXIT_INPUT, error
    assert not bucket.exists()
    assert error.startswith("error: nothing exported: ") and "Traceback" not in error
    return error


@pytest.mark.parametrize(("columns", "extra", "expected"), [
    ({"x": [1.0, None, *range(10)]}, ("--categorical", "colour"),
     "missing values in feature column(s) x (1 rows); fill them in, or pass --drop-missing"),
    ({}, (), "column 'colour' holds text (e.g. 'red'); declare it with --categorical colour"),
    ({"y": ["same"] * 12}, ("--categorical", "colour"),
     "target 'y' has a single class ('same'); classification needs two or more"),
    ({"y": ["a", "b"] * 6}, ("--categorical", "colour", "--task", "regression"),
     "target 'y' holds text (e.g. 'a'); pass --task classification"),
    ({}, ("--categorical", "shade"), "no column 'shade'; the columns are x, colour, y"),
    ({}, ("--features", "x", "--categorical", "colour"),
     "categorical column 'colour' is not one of the features"),
])
def test_bad_tables_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                columns: dict, extra: tuple[str, ...], expected: str) -> None:
    data = table(tmp_path, **columns)

    error = refused(capsys, tmp_path / "bucket", "--data", str(data), "--target", "y", *extra)

    assert expected in error


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("data.xlsx", b"PK\x03\x04", "not a table (expected .csv, .txt or .parquet, .pq)"),
    ("data.parquet", b"not parquet at all", "cannot be read as a table"),
    ("data.csv", b"", "cannot be read as a table"),
])
def test_unreadable_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    error = refused(capsys, tmp_path / "bucket", "--data", str(path), "--target", "y")

    assert f"{path}: {expected}" in error


def test_missing_target_column_and_keras_file_are_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = table(tmp_path)
    bucket = tmp_path / "bucket"

    assert "no target column 'price'; the columns are x, colour, y" in refused(
        capsys, bucket, "--data", str(data), "--target", "price")
    assert f"--keras {tmp_path / 'none.keras'}: no such file" in refused(
        capsys, bucket, "--data", str(data), "--target", "y", "--categorical", "colour",
        "--keras", str(tmp_path / "none.keras"))


def test_the_real_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    data = table(tmp_path)

    completed = subprocess.run(
        [sys.executable, "-m", "train.tabular", "--data", str(data), "--target", "y",
         "--bucket", str(tmp_path / "bucket")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "error: nothing exported: column 'colour' holds text (e.g. 'red'); declare it with "
        "--categorical colour, or leave it out of --features")
    assert not (tmp_path / "bucket").exists()


def test_drop_missing_drops_the_rows_and_counts_them(tmp_path: Path) -> None:
    frame = pd.read_csv(table(tmp_path, x=[1.0, None, None, *range(9)]))

    prepared = prepare(frame, TableRequest(target="y", categorical=("colour",),
                                           missing=MISSING_DROP))

    assert prepared.rows["dropped_missing_features"] == 2
    assert prepared.rows["used"] == 10 and len(prepared.x) == 10


def test_task_inference_says_what_it_inferred(tmp_path: Path) -> None:
    frame = pd.read_csv(table(tmp_path, y=[0, 1, 2] * 4))

    prepared = prepare(frame, TableRequest(target="y", categorical=("colour",)))

    assert prepared.task == TASK_CLASSIFICATION
    assert prepared.task_reason.startswith("inferred: target 'y' holds 3 whole-number values")
    assert prepared.labels == ("0", "1", "2")
    assert prepared.schema[1] == {"name": "colour", "type": "category", "unit": "",
                                  "categories": {"green": 0, "red": 1}, "description": ""}


def photo(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8), "L").save(path)


def refused_photos(capsys: pytest.CaptureFixture[str], data: Path, bucket: Path) -> str:
    code = image.main(["finetune", "--data", str(data), "--weights", "none", "--size", "32",
                       "--bucket", str(bucket), "--quiet"])
    error = capsys.readouterr().err
    assert code == image.EXIT_INPUT, error
    assert not bucket.exists()
    assert error.startswith("error: nothing exported: ") and "Traceback" not in error
    return error


def test_photo_folders_without_classes_or_photos_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, bucket = tmp_path / "photos", tmp_path / "bucket"
    data.mkdir()
    (data / "notes.txt").write_text("no class folders here")
    assert f"--data {data}: no class folders" in refused_photos(capsys, data, bucket)

    photo(data / "cat" / "1.png")
    photo(data / "cat" / "2.png")
    assert "only one class folder (cat); a classifier needs two or more" in refused_photos(
        capsys, data, bucket)

    photo(data / "dog" / "1.png")
    (data / "dog" / "2.png").write_bytes(b"not a png")
    assert (f"class folder {data / 'dog'}: 1 usable image(s); every class needs at least 2"
            in refused_photos(capsys, data, bucket))
    assert f"--data {tmp_path / 'nowhere'}: not a folder" in refused_photos(
        capsys, tmp_path / "nowhere", bucket)


def test_unreadable_and_other_files_are_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "photos"
    for label in ("cat", "dog"):
        photo(data / label / "a.png", 10)
        photo(data / label / "b.png", 200)
    (data / "cat" / "c.jpg").write_bytes(b"\xff\xd8\xff truncated")
    (data / "dog" / "readme.txt").write_text("text")

    photos = load_photos(data, 32)

    assert photos.classes == ("cat", "dog")
    assert photos.counts() == {"cat": 2, "dog": 2}
    assert photos.pixels.shape == (4, 32, 32, 3)
    text = skipped_text(photos)
    assert text.startswith("2 file(s) skipped (")
    assert "c.jpg: The JPEG image cannot be decoded" in text
    assert "readme.txt: not a .jpg, .jpeg, .png or .webp file" in text
