"""The handwritten digits of scikit-learn as photo folders, and `python -m train.image
finetune` as a command: shared by the fine-tuning tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import REPO_ROOT

SIZE = 32
TIMEOUT_S = 900


def write_digits(folder: Path) -> tuple[list[Path], np.ndarray]:
    """load_digits as 32x32 greyscale PNG files, digit_0/ ... digit_9/."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    files = []
    for index, (pixels, digit) in enumerate(zip(digits.images, digits.target, strict=True)):
        path = folder / f"digit_{digit}" / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(np.clip(pixels * 16, 0, 255).astype(np.uint8), "L")
        image.resize((SIZE, SIZE), Image.Resampling.BILINEAR).save(path)
        files.append(path)
    order = sorted(files, key=lambda p: (p.parent.name, p.name))
    return order, np.array([int(p.parent.name.split("_")[1]) for p in order])


def run_finetune(*argv: str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "train.image", "finetune", *argv],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False, env={**os.environ, **(env or {})})
