"""`python -m train.image` for the exporter tests (test_train_image.py): the command, its
small sizes, and the serving code's view of what it exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modelserve.app import build_endpoint
from modelserve.declarations import declaration
from modelserve.tasks.image_classification import ImageModel
from tests.helpers import REPO_ROOT, run_main_here
from train import bucket

SIZE = 32  # MobileNetV2's smallest input: the exports below need no ImageNet-sized input
SMALL = ("--alpha", "0.35", "--size", str(SIZE))
IMAGENET_SIZE = ("--alpha", "0.35", "--size", "96")  # a size ImageNet weights exist for
TRAIN_TIMEOUT_S = 300


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


def keras_export(folder: Path, weights: str, *args: str) -> tuple[Path, str]:
    """MobileNetV2 0.35/32 with `weights` (`none`: untrained, or a weights file) exported by
    `train.image keras ARGS` into `folder/bucket`: its model root and the command's stdout.
    Through `train.image.main` in this process, which imports TensorFlow for its own tests
    anyway (`run_train` runs the command line itself)."""
    from train import image

    root = folder / "bucket"
    code, stdout, stderr = run_main_here(
        image.main, ["keras", "--weights", weights, *SMALL, *args, "--bucket", str(root)])
    assert code == 0, stdout + stderr
    return root / "image", stdout


def write_representative(folder: Path) -> Path:
    """Four small generated images in mixed sizes, modes and formats, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index, (mode, suffix) in enumerate(
        [("RGB", ".png"), ("L", ".png"), ("RGBA", ".png"), ("RGB", ".jpg")]
    ):
        blobs = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        image = Image.fromarray(blobs).resize((70 + 10 * index, 50), Image.Resampling.BICUBIC)
        image.convert(mode).save(folder / f"sample_{index}{suffix}")
    return folder
