"""classify_image servers: on the tests' colour classifier, or on the shared ImageNet model.

Most tests need only an image classifier: they pass the `colour_model_root` fixture's root
(tests/colour_classifier.py). The ImageNet model is imported into a private bucket with
train.image_import.import_version, exactly as `make models` does; tests that need ImageNet's
own labels skip, a whole module at a time (`skip_module_without_imagenet`), when
IMAGENET_TFLITE and SHARED_IMAGES are unset.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import FunctionServer

IMAGENET_SKIP_REASON = (
    "IMAGENET_TFLITE and SHARED_IMAGES name the shared model and photos (.ci/run sets them)"
)


def skip_module_without_imagenet() -> None:
    """Skip the calling test module (one skip, one line) unless ../shared is configured."""
    if not (os.environ.get("IMAGENET_TFLITE") and os.environ.get("SHARED_IMAGES")):
        pytest.skip(IMAGENET_SKIP_REASON, allow_module_level=True)


IMAGE_MODEL_NAME = "image"


def import_imagenet_bucket(bucket: Path) -> Path:
    """Import the shared ImageNet classifier into `bucket`; the model root (`bucket/image`)."""
    from train.image_import import import_version

    tflite = Path(os.environ["IMAGENET_TFLITE"])
    import_version(tflite, tflite.parent / "imagenet_labels.txt", bucket)
    return bucket / IMAGE_MODEL_NAME


def image_server_env(folder: Path, model_root: Path | None = None,
                     **extra: str) -> dict[str, str]:
    """Environment of a classify_image process whose cache lives under `folder`: on
    `model_root`, or on ImageNet imported (once) into `folder`/bucket."""
    root = model_root or folder / "bucket" / IMAGE_MODEL_NAME
    if not (root / "LATEST").is_file():
        import_imagenet_bucket(folder / "bucket")
    return {"IMAGE_MODEL_URI": str(root), "MODEL_CACHE_DIR": str(folder / "cache"), **extra}


def start_image_server(folder: Path, model_root: Path | None = None,
                       **extra: str) -> FunctionServer:
    """A classify_image process (on `model_root`, else ImageNet); its log is folder/server.log."""
    folder.mkdir(parents=True, exist_ok=True)
    return FunctionServer("classify_image", image_server_env(folder, model_root, **extra),
                          folder / "server.log")


def shared_photo(name: str) -> bytes:
    """One of the shared photos (cat.bmp, bird.bmp, ...), as bytes."""
    return (Path(os.environ["SHARED_IMAGES"]) / name).read_bytes()


