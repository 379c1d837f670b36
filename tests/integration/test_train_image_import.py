"""python -m train.image import of the shared ImageNet classifier, served by the serving code.

The shared model and photos are read from IMAGENET_TFLITE and SHARED_IMAGES (never copied
into the repository), the model with a custom operator from INVOKE_ERROR_TFLITE. Without
them the whole module is one skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from modelserve.contract import WRITER_REQUIRED_KEYS, sha256_file, verify_folder
from modelserve.image_decoding import to_rgb
from tests.integration.fixtures_image import skip_module_without_imagenet
from tests.integration.test_train_image import manifest_of, run_train, serve
from train import bucket
from train.image_import import import_version

skip_module_without_imagenet()

SHARED_MODEL_SHA256 = "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
LABELS_NAME = "imagenet_labels.txt"


@pytest.fixture
def shared_model() -> tuple[Path, Path]:
    """The shared quantized MobileNetV2 and its label file (skip when IMAGENET_TFLITE is unset)."""
    value = os.environ.get("IMAGENET_TFLITE")
    if not value:
        pytest.skip("IMAGENET_TFLITE is not set (path of the shared MobileNetV2 .tflite)")
    tflite = Path(value)
    if not tflite.is_file():
        pytest.skip(f"IMAGENET_TFLITE={value} does not exist")
    return tflite, tflite.parent / LABELS_NAME


@pytest.fixture
def shared_images() -> Path:
    """The shared photo folder (skip when SHARED_IMAGES is unset)."""
    value = os.environ.get("SHARED_IMAGES")
    if not value or not Path(value).is_dir():
        pytest.skip("SHARED_IMAGES is not set (folder of the shared test photos)")
    return Path(value)


@pytest.fixture
def invoke_error_model() -> Path:
    """The shared model with a custom operator LiteRT cannot run (skip when unset)."""
    value = os.environ.get("INVOKE_ERROR_TFLITE")
    if not value or not Path(value).is_file():
        pytest.skip("INVOKE_ERROR_TFLITE is not set (the shared model with a custom operator)")
    return Path(value)


# --- import (no TensorFlow) -----------------------------------------------------------------

def test_import_of_the_shared_model_writes_a_complete_version(
    shared_model: tuple[Path, Path], tmp_path: Path
) -> None:
    tflite, labels = shared_model
    folder = import_version(tflite, labels, tmp_path / "bucket")[0]
    manifest = verify_folder(folder).raw  # every listed file matches its sha256 and size
    assert bucket.read_latest(tmp_path / "bucket" / "image") == folder.name == manifest["version"]
    assert all(key in manifest for key in WRITER_REQUIRED_KEYS)
    assert manifest["files"]["model.tflite"]["sha256"] == SHARED_MODEL_SHA256
    assert manifest["input"]["dtype"] == "uint8"
    assert (manifest["input"]["height"], manifest["input"]["width"]) == (224, 224)
    assert manifest["input"]["normalization"] == {"mean": 128.0, "std": 128.0}
    assert manifest["input"]["quantization"] == {"scale": 0.0078125, "zero_point": 128}
    assert manifest["output"] == {
        "classes": 1001, "dtype": "uint8",
        "quantization": {"scale": 0.00390625, "zero_point": 0}, "activation": "none",
        "label_file": "labels.txt", "label_offset": 1,
    }
    training = manifest["training"]
    assert training["source"] == "import"
    assert training["model"] == {"file": tflite.name, "sha256": SHARED_MODEL_SHA256}
    assert training["labels"]["sha256"] == sha256_file(labels)
    stored = (folder / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(stored) == 1000
    assert stored[0].startswith("tench")


@pytest.mark.parametrize(("photo", "label"), [("cat.bmp", "Egyptian cat"),
                                              ("bird.bmp", "chickadee")])
def test_imported_model_classifies_through_the_serving_code(
    shared_model: tuple[Path, Path], shared_images: Path, tmp_path: Path, photo: str, label: str
) -> None:
    import_version(*shared_model, tmp_path / "bucket")
    model = serve(tmp_path / "bucket" / "image", tmp_path / "cache")
    with Image.open(shared_images / photo) as image:
        assert model.top(to_rgb(image), 5)[0]["label"] == label


def test_import_command_prints_progress_and_a_summary(
    shared_model: tuple[Path, Path], tmp_path: Path
) -> None:
    tflite, labels = shared_model
    result = run_train("import", "--tflite", str(tflite), "--labels", str(labels),
                       "--bucket", str(tmp_path / "bucket"))
    assert result.returncode == 0, result.stderr
    assert "leading 'background' line dropped" in result.stdout
    assert "Image classifier exported" in result.stdout
    assert manifest_of(tmp_path / "bucket" / "image")["training"]["command"].startswith(
        "python -m train.image import --tflite")


def test_a_model_litert_cannot_run_is_refused(
    shared_model: tuple[Path, Path], invoke_error_model: Path, tmp_path: Path
) -> None:
    broken = invoke_error_model
    result = run_train("import", "--tflite", str(broken), "--labels", str(shared_model[1]),
                       "--bucket", str(tmp_path / "bucket"))
    assert result.returncode == 2
    assert "LiteRT cannot" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "bucket").exists()
