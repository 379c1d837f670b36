"""train.image_import: label fitting, normalization, activation and manifest rules (no TF)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from modelserve.contract import verify_folder
from tests.helpers import REPO_ROOT
from train import bucket
from train.image import parse_args
from train.image_import import (
    ImportRefused,
    LabelPlan,
    ModelInfo,
    Normalization,
    Quantization,
    VersionContent,
    build_manifest,
    choose_normalization,
    default_normalization,
    detect_activation,
    fit_labels,
    pixel_lut,
    read_labels,
    write_version,
)

IMAGENET = [f"class {index}" for index in range(1000)]
SHARED_INPUT_Q = Quantization(0.0078125, 128)  # the shared quantized MobileNetV2
SHARED_OUTPUT_Q = Quantization(0.00390625, 0)
UINT8_MODEL = ModelInfo(224, 224, "uint8", SHARED_INPUT_Q, 1001, "uint8", SHARED_OUTPUT_Q)
FLOAT_MODEL = ModelInfo(96, 96, "float32", None, 1000, "float32", None)


@pytest.mark.parametrize(
    ("labels", "classes", "offset", "dropped", "first"),
    [
        (IMAGENET, 1001, 1, False, "class 0"),  # background not listed
        (["background", *IMAGENET], 1001, 1, True, "class 0"),  # background listed: dropped
        (["Background", *IMAGENET], 1001, 1, True, "class 0"),  # case-insensitive
        (IMAGENET, 1000, 0, False, "class 0"),  # no background
    ],
)
def test_fit_labels_detects_background(
    labels: list[str], classes: int, offset: int, dropped: bool, first: str
) -> None:
    plan = fit_labels(labels, classes)
    assert (plan.offset, plan.dropped_background, plan.labels[0]) == (offset, dropped, first)
    assert len(plan.labels) + plan.offset == classes


@pytest.mark.parametrize(
    ("count", "classes"),
    [(999, 1001), (1002, 1001), (1001, 1000), (10, 1000)],
)
def test_fit_labels_refuses_a_mismatch_naming_both_counts(count: int, classes: int) -> None:
    with pytest.raises(ImportRefused) as refused:
        fit_labels([f"label {index}" for index in range(count)], classes)
    assert f"{classes} outputs" in str(refused.value)
    assert f"{count} labels" in str(refused.value)


@pytest.mark.parametrize(
    ("dtype", "quantization", "expected"),
    [
        ("uint8", SHARED_INPUT_Q, Normalization(128.0, 128.0)),
        ("int8", Quantization(0.0078125, 0), Normalization(0.0, 128.0)),
        ("uint8", Quantization(1 / 255, 0), Normalization(0.0, 255.0)),
        ("float32", None, Normalization(127.5, 127.5)),
    ],
)
def test_default_normalization(
    dtype: str, quantization: Quantization | None, expected: Normalization
) -> None:
    normalization = default_normalization(dtype, quantization)
    assert normalization.mean == pytest.approx(expected.mean)
    assert normalization.std == pytest.approx(expected.std)


def test_default_normalization_of_a_quantized_input_passes_pixels_through() -> None:
    lut = pixel_lut(UINT8_MODEL, default_normalization("uint8", SHARED_INPUT_Q))
    assert lut.dtype == np.uint8
    assert np.array_equal(lut, np.arange(256))


def test_explicit_normalization_wins() -> None:
    assert choose_normalization(UINT8_MODEL, 127.5, 127.5) == Normalization(127.5, 127.5)
    assert pixel_lut(FLOAT_MODEL, Normalization(127.5, 127.5))[[0, 255]].tolist() == [-1, 1]


@pytest.mark.parametrize(("mean", "std"), [(127.5, None), (None, 127.5), (0.0, 0.0),
                                           (0.0, -1.0), (float("nan"), 1.0)])
def test_bad_normalization_is_refused(mean: float | None, std: float | None) -> None:
    with pytest.raises(ImportRefused):
        choose_normalization(FLOAT_MODEL, mean, std)


def test_a_quantized_input_without_quantization_is_refused() -> None:
    with pytest.raises(ImportRefused, match="quantization"):
        default_normalization("uint8", None)


def test_cli_needs_both_mean_and_std(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(["import", "--tflite", "m.tflite", "--labels", "l.txt", "--mean", "1"])
    assert stopped.value.code == 2
    assert "--mean and --std" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("info", "scores", "expected"),
    [
        (UINT8_MODEL, np.zeros(1001), "none"),  # quantized uint8: probabilities by convention
        (FLOAT_MODEL, np.full(1000, 1e-3), "none"),  # sums to 1
        (FLOAT_MODEL, np.linspace(-3, 3, 1000), "softmax"),  # logits
        (FLOAT_MODEL, np.full(1000, 0.5), "softmax"),  # non-negative but not a distribution
        (ModelInfo(96, 96, "int8", None, 1000, "int8", Quantization(1 / 256, -128)),
         np.r_[0.9, np.zeros(999)], "none"),  # within the quantized rounding of 1
        (ModelInfo(96, 96, "int8", None, 1000, "int8", Quantization(0.1, 0)),
         np.r_[-2.0, np.zeros(999)], "softmax"),
    ],
)
def test_detect_activation(info: ModelInfo, scores: np.ndarray, expected: str) -> None:
    assert detect_activation(info, scores) == expected


def test_read_labels_strips_and_ignores_trailing_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffbackground\r\n  tench, Tinca tinca \r\nÉcrevisse\n\n\n".encode())
    assert read_labels(path) == ["background", "tench, Tinca tinca", "Écrevisse"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"cat\n\ndog\n", "line 2 is empty"), (b"\n\n", "no labels"), (b"caf\xe9\n", "UTF-8")],
)
def test_read_labels_refuses_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(ImportRefused, match=message):
        read_labels(path)


def _content(labels: tuple[str, ...] = ("cat", "dog")) -> VersionContent:
    info = ModelInfo(224, 224, "uint8", SHARED_INPUT_Q, len(labels) + 1, "uint8",
                     SHARED_OUTPUT_Q)
    return VersionContent(
        info=info,
        labels=LabelPlan(labels, 1, dropped_background=True),
        normalization=Normalization(128.0, 128.0),
        resize_filter="bilinear",
        activation="none",
        training={"source": "import", "command": "test"},
        metrics={},
    )


def test_manifest_follows_the_bucket_contract() -> None:
    manifest = build_manifest("image", "20261125T120000Z",
                              datetime(2026, 11, 25, 12, tzinfo=UTC), _content())
    assert manifest["created_at"] == "2026-11-25T12:00:00Z"
    assert manifest["task"] == "image_classification"
    assert manifest["runtime"] == {"format": "tflite", "model_file": "model.tflite"}
    assert manifest["input"] == {
        "kind": "image", "height": 224, "width": 224, "channels": 3, "color": "RGB",
        "dtype": "uint8", "resize": {"filter": "bilinear", "mode": "stretch"},
        "normalization": {"mean": 128.0, "std": 128.0},
        "quantization": {"scale": 0.0078125, "zero_point": 128},
    }
    assert manifest["output"] == {
        "classes": 3, "dtype": "uint8", "quantization": {"scale": 0.00390625, "zero_point": 0},
        "activation": "none", "label_file": "labels.txt", "label_offset": 1,
    }


def test_write_version_publishes_labels_model_and_manifest(tmp_path: Path) -> None:
    model = tmp_path / "any.tflite"
    model.write_bytes(b"not really a model")
    folder, manifest = write_version(tmp_path / "bucket", "image", model, _content())
    assert bucket.read_latest(tmp_path / "bucket" / "image") == folder.name == manifest["version"]
    assert (folder / "labels.txt").read_bytes() == b"cat\ndog\n"
    assert verify_folder(folder).raw == manifest
    assert json.loads((folder / "manifest.json").read_text())["files"].keys() == {
        "labels.txt", "model.tflite"}


def test_the_import_route_does_not_load_tensorflow() -> None:
    probe = ("import sys, train.image, train.image_import; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
