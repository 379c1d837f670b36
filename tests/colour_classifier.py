"""A small image classifier that the tests build and export themselves: no download, no ../shared.

The network averages each colour channel over the image and picks the strongest one, so its
answers can be checked: a mostly red photo is "red", a green one "green", a blue one "blue".
It is a real Keras model converted to a float32 `.tflite` and imported into a bucket through
the normal import (`train.image_import.import_version`), so everything between an upload and
the answer (decoding, limits, resizing, the pixel table, softmax, top-k) runs as for ImageNet.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ("red", "green", "blue")
SIZE = 64  # input height and width
MODEL_NAME = "image"
COLOURS = {"red": (200, 30, 40), "green": (20, 180, 40), "blue": (30, 40, 210)}
# Channel means lie in [-1, 1] after the normalization; this gain makes the winner clear.
GAIN = 8.0


def build_tflite(path: Path) -> Path:
    """Build the colour classifier with Keras and write it as a float32 `.tflite`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    inputs = keras.Input((SIZE, SIZE, 3))
    means = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(len(LABELS), activation="softmax")
    model = keras.Model(inputs, dense(means))
    dense.set_weights([np.eye(3, dtype=np.float32) * GAIN, np.zeros(3, dtype=np.float32)])
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def export_bucket(folder: Path) -> Path:
    """Build, convert and import the classifier into `folder/bucket`; the model root."""
    from train.image_import import import_version

    folder.mkdir(parents=True, exist_ok=True)
    tflite = build_tflite(folder / "colours.tflite")
    labels = folder / "colours.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    import_version(tflite, labels, folder / "bucket", MODEL_NAME)
    return folder / "bucket" / MODEL_NAME


def photo(colour: str, size: tuple[int, int] = (320, 240), image_format: str = "JPEG") -> bytes:
    """A noisy photo dominated by one colour, encoded as `image_format`."""
    rng = np.random.default_rng(sum(map(ord, colour)))
    base = np.array(COLOURS[colour], dtype=np.int16)
    noise = rng.integers(-25, 26, (size[1], size[0], 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, image_format)
    return buffer.getvalue()
