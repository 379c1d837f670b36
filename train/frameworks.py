"""The versions of the frameworks that trained and converted a model (manifest provenance)."""

from __future__ import annotations

import platform

import ai_edge_litert
import keras
import numpy as np
import tensorflow as tf


def versions(**extra: str) -> dict[str, str]:
    """Python, TensorFlow, Keras, numpy and LiteRT versions, plus `extra` (e.g. pandas=...)."""
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        **extra,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
    }
