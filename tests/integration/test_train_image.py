"""python -m train.image: import the shared classifier, export Keras MobileNetV2, serve both.

The shared model and photos are read from IMAGENET_TFLITE and SHARED_IMAGES (never copied
into the repository), the model with a custom operator from INVOKE_ERROR_TFLITE; the tests
that need them skip when the variables are unset.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from modelserve.app import build_endpoint
from modelserve.contract import WRITER_REQUIRED_KEYS, sha256_file, verify_folder
from modelserve.declarations import declaration
from modelserve.image_decoding import to_rgb
from modelserve.tasks.image_classification import ImageModel
from tests.helpers import REPO_ROOT
from train import bucket
from train.image_import import import_version

SHARED_MODEL_SHA256 = "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
LABELS_NAME = "imagenet_labels.txt"
SMALL = ("--alpha", "0.35", "--size", "96")
SIZE = 96
TRAIN_TIMEOUT_S = 300
WEIGHTS_HOST = ("storage.googleapis.com", 443)
KERAS_NOISE = "ignore::DeprecationWarning:keras"  # numpy 2 copy= notices from keras internals
PHOTO_LABELS = {"cat.bmp": "Egyptian cat", "bird.bmp": "chickadee",
                "grace_hopper.bmp": "military uniform", "missvickie_potato_chips.bmp": "packet",
                "cat_720p.jpg": "a cat"}
CATS = ("tabby, tabby cat", "tiger cat", "Persian cat", "Siamese cat, Siamese", "Egyptian cat")


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


@pytest.fixture(scope="module")
def representative(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small generated images in mixed sizes, modes and formats."""
    folder = tmp_path_factory.mktemp("representative")
    rng = np.random.default_rng(7)
    for index, (mode, suffix) in enumerate(
        [("RGB", ".png"), ("L", ".png"), ("RGBA", ".png"), ("RGB", ".jpg")]
    ):
        blobs = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        image = Image.fromarray(blobs).resize((70 + 10 * index, 50), Image.Resampling.BICUBIC)
        image.convert(mode).save(folder / f"sample_{index}{suffix}")
    return folder


@pytest.fixture(scope="module")
def peaked_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MobileNetV2 0.35/96 weights file whose answers differ from class to class.

    Untrained weights answer exactly 1/1000 everywhere (activations vanish through the blocks),
    so their parity is trivially perfect. Here BatchNorm statistics come from one batch of
    noise and the classifier is scaled up, so one class clearly wins for each image.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35,
                                           weights=None)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # one training-mode call sets the moving statistics
    noise = np.random.default_rng(0).uniform(-1, 1, (16, SIZE, SIZE, 3)).astype(np.float32)
    model(noise, training=True)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 20.0, bias])
    path = tmp_path_factory.mktemp("weights") / "peaked.weights.h5"
    model.save_weights(path)
    return path


def run_train(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m train.image ARGS` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "train.image", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )


def serve(model_root: Path, cache: Path) -> ImageModel:
    """The model LATEST names, loaded by the serving code exactly as classify_image loads it."""
    environ = {"IMAGE_MODEL_URI": str(model_root), "MODEL_CACHE_DIR": str(cache)}
    return build_endpoint(declaration("classify_image"), environ).model.get()


def manifest_of(model_root: Path) -> dict[str, Any]:
    return json.loads((model_root / bucket.read_latest(model_root) / "manifest.json").read_text())


def nothing_published(model_root: Path) -> bool:
    """No version folder and no LATEST (an empty model folder may remain)."""
    return not model_root.exists() or not any(model_root.iterdir())


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


def test_labels_that_do_not_fit_are_refused_and_nothing_is_written(
    shared_model: tuple[Path, Path], tmp_path: Path
) -> None:
    tflite, labels = shared_model
    short = tmp_path / "short.txt"
    short.write_text("\n".join(labels.read_text().splitlines()[:999]) + "\n")
    result = run_train("import", "--tflite", str(tflite), "--labels", str(short),
                       "--bucket", str(tmp_path / "bucket"))
    assert result.returncode == 2
    assert "1001 outputs" in result.stderr and "999 labels" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bucket").exists()
    # The same command with the right labels still works.
    assert run_train("import", "--tflite", str(tflite), "--labels", str(labels),
                     "--bucket", str(tmp_path / "bucket")).returncode == 0


def test_a_model_litert_cannot_run_is_refused(
    shared_model: tuple[Path, Path], tmp_path: Path
) -> None:
    broken = shared_model[0].parent.parent / "model_invoking_error.tflite"
    if not broken.is_file():
        pytest.skip(f"{broken} is not there")
    result = run_train("import", "--tflite", str(broken), "--labels", str(shared_model[1]),
                       "--bucket", str(tmp_path / "bucket"))
    assert result.returncode == 2
    assert "LiteRT cannot" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "bucket").exists()


# --- keras (TensorFlow: slow) ---------------------------------------------------------------

Export = Callable[[str], tuple[Path, str]]


@pytest.fixture(scope="module")
def keras_exports(tmp_path_factory: pytest.TempPathFactory, representative: Path) -> Export:
    """Untrained MobileNetV2 0.35/96 exported as none or int8, once each (lazily): a function
    answering (model root, stdout) for a quantize mode."""
    done: dict[str, tuple[Path, str]] = {}

    def export(quantize: str) -> tuple[Path, str]:
        if quantize not in done:
            root = tmp_path_factory.mktemp(f"keras-{quantize}") / "bucket"
            extra = ("--representative", str(representative)) if quantize == "int8" else ()
            result = run_train("keras", "--weights", "none", *SMALL, "--quantize", quantize,
                               *extra, "--bucket", str(root))
            assert result.returncode == 0, result.stdout + result.stderr
            done[quantize] = (root / "image", result.stdout)
        return done[quantize]

    return export


@pytest.mark.slow
def test_keras_export_passes_parity_and_serves_probabilities(
    keras_exports: Export, tmp_path: Path
) -> None:
    model_root, stdout = keras_exports("none")
    manifest = manifest_of(model_root)
    metrics = manifest["metrics"]
    assert metrics["parity_samples"] == 8
    assert metrics["parity_top1_agreement"] == 1.0
    assert metrics["parity_max_prob_diff"] <= 1e-3
    assert metrics["parity_max_prob_diff_limit"] == 1e-3
    assert manifest["input"]["dtype"] == "float32" and manifest["input"]["quantization"] is None
    assert manifest["input"]["normalization"] == {"mean": 127.5, "std": 127.5}
    assert manifest["output"]["activation"] == "none"
    assert (manifest["output"]["classes"], manifest["output"]["label_offset"]) == (1000, 0)
    assert manifest["training"]["quantize"] == "none"
    assert "parity    top-1 agreement 100%" in stdout
    model = serve(model_root, tmp_path / "cache")
    probabilities = model.probabilities(Image.new("RGB", (200, 120), (200, 40, 90)))
    assert probabilities.shape == (1000,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-3)
    assert model.top(Image.new("RGB", (50, 50)), 1)[0]["label"].startswith("class_")


@pytest.mark.slow
def test_keras_int8_export_records_parity_and_serves(keras_exports: Export, tmp_path: Path) -> None:
    model_root, _ = keras_exports("int8")
    manifest = manifest_of(model_root)
    metrics = manifest["metrics"]
    assert metrics["parity_samples"] == 4  # the representative images
    assert metrics["parity_top1_agreement"] >= 0.75
    assert metrics["parity_max_prob_diff"] >= 0 and metrics["parity_max_prob_diff_limit"] is None
    assert manifest["input"]["dtype"] == "uint8" and manifest["output"]["dtype"] == "uint8"
    assert manifest["input"]["quantization"]["scale"] > 0
    assert manifest["training"]["representative"]["images"] == 4
    predictions = serve(model_root, tmp_path / "cache").top(Image.new("RGB", (96, 96)), 5)
    assert len(predictions) == 5


@pytest.mark.slow
@pytest.mark.filterwarnings(KERAS_NOISE)
def test_keras_export_from_a_weights_file_matches_keras_through_the_serving_code(
    peaked_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import keras

    from train import image

    code = image.main(["keras", "--weights", str(peaked_weights), *SMALL,
                       "--bucket", str(tmp_path / "bucket")])
    assert code == 0, capsys.readouterr().err
    model_root = tmp_path / "bucket" / "image"
    manifest = manifest_of(model_root)
    assert manifest["training"]["weights"] == {
        "source": "file", "file": peaked_weights.name,
        "sha256": sha256_file(peaked_weights)}
    assert manifest["metrics"]["parity_keras_top1_margin"] > 0.1  # a real top-1, not a tie
    assert manifest["metrics"]["parity_top1_agreement"] == 1.0

    photo = Image.fromarray(np.random.default_rng(3).integers(0, 256, (4, 4, 3), np.uint8))
    photo = photo.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    reference = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35,
                                               weights=str(peaked_weights))
    pixels = np.asarray(photo, dtype=np.float32)[np.newaxis]
    expected = reference.predict(
        keras.applications.mobilenet_v2.preprocess_input(pixels), verbose=0)[0]
    answer = serve(model_root, tmp_path / "cache").top(photo, 1)[0]
    assert answer["class_id"] == int(np.argmax(expected))
    assert answer["probability"] == pytest.approx(float(np.max(expected)), abs=1e-3)


@pytest.mark.slow
@pytest.mark.filterwarnings(KERAS_NOISE)
def test_a_failed_parity_check_publishes_nothing(
    peaked_weights: Path, keras_exports: Export, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from train import image, image_keras

    # The "conversion" hands back the untrained model's .tflite: it cannot answer like Keras.
    untrained = keras_exports("none")[0]
    wrong = (untrained / bucket.read_latest(untrained) / "model.tflite").read_bytes()
    monkeypatch.setattr(image_keras, "convert", lambda *_args: wrong)
    code = image.main(["keras", "--weights", str(peaked_weights), *SMALL,
                       "--bucket", str(tmp_path / "bucket"), "--quiet"])
    assert code == 1
    assert "parity check failed, nothing exported" in capsys.readouterr().err
    assert nothing_published(tmp_path / "bucket" / "image")


@pytest.mark.slow
def test_imagenet_weights_offline_fail_fast_with_a_hint(tmp_path: Path) -> None:
    try:
        socket.create_connection(WEIGHTS_HOST, timeout=3).close()
        pytest.skip(f"{WEIGHTS_HOST[0]} is reachable: this test is for offline machines")
    except OSError:
        pass
    result = run_train("keras", "--weights", "imagenet", *SMALL,
                       "--bucket", str(tmp_path / "bucket"),
                       env={"KERAS_HOME": str(tmp_path / "keras")})  # no cached weights
    assert result.returncode == 2
    assert "Could not download the ImageNet weights for MobileNetV2 (no network?)" in result.stderr
    assert "python -m train.image import --tflite PATH --labels PATH" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert nothing_published(tmp_path / "bucket" / "image")
