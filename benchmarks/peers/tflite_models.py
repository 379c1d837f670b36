"""The two models as a peer's service loads and runs them: plain LiteRT, numpy and Pillow.

Imported by the BentoML and LitServe services (each in its own virtual environment, which has
no `modelserve`). PEER_MODEL_DIR names a version folder of the bucket (manifest.json,
model.tflite, labels.txt): the same files the functions serve. The work per request is the
functions' (decode, RGB, resize with the manifest's filter, invoke, dequantize, top k).
"""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

MODEL_DIR_VARIABLE = "PEER_MODEL_DIR"
TOP_K = 5
RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
            "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def model_dir() -> Path:
    return Path(os.environ[MODEL_DIR_VARIABLE])


def manifest() -> dict[str, Any]:
    return json.loads((model_dir() / "manifest.json").read_text())


def feature_ranges() -> dict[str, tuple[float, float]]:
    """A tabular model's training ranges (min, max) by feature, in input order; else {}."""
    features = manifest()["input"].get("features", [])
    return {f["name"]: (f["min"], f["max"]) for f in features}


class TfliteModel:
    """One interpreter behind a lock (the peers may call it from several threads)."""

    def __init__(self) -> None:
        self.manifest = manifest()
        path = model_dir() / self.manifest["runtime"]["model_file"]
        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._lock = threading.Lock()

    def invoke(self, array: np.ndarray) -> np.ndarray:
        with self._lock:
            self.interpreter.set_tensor(self.input["index"], array)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output["index"]).copy()


class MpgModel(TfliteModel):
    """Miles per gallon from the seven features."""

    def __init__(self) -> None:
        super().__init__()
        self.features = [f["name"] for f in self.manifest["input"]["features"]]

    def predict(self, record: dict[str, float]) -> float:
        row = np.array([[record[name] for name in self.features]], dtype=np.float32)
        return float(self.invoke(row).reshape(-1)[0])


class ImageClassifier(TfliteModel):
    """The top k ImageNet labels of an image."""

    def __init__(self) -> None:
        super().__init__()
        spec, output = self.manifest["input"], self.manifest["output"]
        self.size = (spec["width"], spec["height"])
        self.resample = RESAMPLE[spec["resize"]["filter"]]
        self.dtype = np.dtype(spec["dtype"])
        self.normalization = spec.get("normalization", {"mean": 0.0, "std": 1.0})
        quantization = output.get("quantization")
        self.output_quantization = (quantization["scale"], quantization["zero_point"]) \
            if quantization else None
        self.labels = (model_dir() / output["label_file"]).read_text().splitlines()
        self.label_offset = int(output.get("label_offset", 0))

    def classify(self, image: Image.Image, k: int = TOP_K) -> list[dict[str, Any]]:
        pixels = np.asarray(image.convert("RGB").resize(self.size, self.resample))
        if self.dtype == np.uint8:
            batch = pixels[np.newaxis]
        else:
            norm = self.normalization
            batch = ((pixels.astype(np.float32) - norm["mean"]) / norm["std"])[np.newaxis]
        scores = self.invoke(batch.astype(self.dtype)).reshape(-1).astype(np.float32)
        if self.output_quantization is not None:
            scale, zero_point = self.output_quantization
            scores = (scores - zero_point) * scale
        best = np.argsort(-scores)[:k]
        return [{"label": self.label(int(i)), "probability": round(float(scores[i]), 6),
                 "class_id": int(i)} for i in best]

    def classify_bytes(self, data: bytes, k: int = TOP_K) -> list[dict[str, Any]]:
        with Image.open(io.BytesIO(data)) as image:
            return self.classify(image, k)

    def label(self, class_id: int) -> str:
        index = class_id - self.label_offset
        return self.labels[index] if 0 <= index < len(self.labels) else "background"
