"""A folder of photos for fine-tuning: one sub-folder per class, JPEG, PNG or WebP files.

Photos are decoded and resized exactly as classify_image does (modelserve.image_decoding, then
the bilinear stretch), so the model trains on what it will be served. Files that are not
readable JPEG/PNG/WebP images are skipped and counted; an unusable folder is an InputError
naming it. No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from modelserve.errors import AppError
from modelserve.image_decoding import decode_image

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_PER_CLASS = 2
MAX_PIXELS = 40_000_000  # a training photo may be larger than an upload
TEST_FRACTION = 0.2
SHOWN_SKIPPED = 3


class InputError(ValueError):
    """The photo folder cannot train a classifier; the message names the folder or class."""


@dataclass(frozen=True)
class Photos:
    """Decoded photos (uint8 RGB, size x size), their class indexes and the class names."""

    pixels: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (file, why)

    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.labels == index))
                for index, name in enumerate(self.classes)}


def load_photos(folder: Path, size: int) -> Photos:
    """Every class folder's photos, resized to size x size; InputError if unusable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--data {folder}: not a folder")
    class_folders = sorted(path for path in folder.iterdir()
                           if path.is_dir() and not path.name.startswith("."))
    if not class_folders:
        raise InputError(f"--data {folder}: no class folders (put each class's photos in a "
                         "sub-folder named after the class)")
    if len(class_folders) < 2:
        raise InputError(f"--data {folder}: only one class folder ({class_folders[0].name}); "
                         "a classifier needs two or more")
    pixels, labels, skipped = [], [], []
    for index, class_folder in enumerate(class_folders):
        found = 0
        for path in sorted(p for p in class_folder.rglob("*") if p.is_file()):
            image = _read(path, size, skipped)
            if image is not None:
                pixels.append(image)
                labels.append(index)
                found += 1
        if found < MIN_PER_CLASS:
            raise InputError(f"class folder {class_folder}: {found} usable image(s); every "
                             f"class needs at least {MIN_PER_CLASS} (JPEG, PNG or WebP)")
    return Photos(np.stack(pixels), np.asarray(labels, np.int64),
                  tuple(path.name for path in class_folders), tuple(skipped))


def stratified_split(labels: np.ndarray, seed: int, test_fraction: float = TEST_FRACTION
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indexes: each class's photos permuted (seeded), `test_fraction` of them
    (at least one, never all) held out."""
    generator = np.random.RandomState(seed)
    train, test = [], []
    for index in np.unique(labels):
        members = np.flatnonzero(labels == index)
        order = members[generator.permutation(len(members))]
        held = min(max(1, round(len(members) * test_fraction)), len(members) - 1)
        test.extend(order[:held])
        train.extend(order[held:])
    return np.sort(np.asarray(train, np.int64)), np.sort(np.asarray(test, np.int64))


def skipped_text(photos: Photos) -> str:
    """'N files skipped (a.txt: not JPEG, PNG or WebP; ...)', or ''."""
    if not photos.skipped:
        return ""
    shown = "; ".join(f"{name}: {why}" for name, why in photos.skipped[:SHOWN_SKIPPED])
    more = f"; and {len(photos.skipped) - SHOWN_SKIPPED} more" \
        if len(photos.skipped) > SHOWN_SKIPPED else ""
    return f"{len(photos.skipped)} file(s) skipped ({shown}{more})"


def _read(path: Path, size: int, skipped: list[tuple[str, str]]) -> np.ndarray | None:
    if path.name.startswith("."):
        return None
    if path.suffix.lower() not in PHOTO_SUFFIXES:
        skipped.append((str(path), "not a .jpg, .jpeg, .png or .webp file"))
        return None
    try:
        image = decode_image(path.read_bytes(), MAX_PIXELS, (size, size))
    except (AppError, OSError) as error:
        skipped.append((str(path), str(error)))
        return None
    resized = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)
