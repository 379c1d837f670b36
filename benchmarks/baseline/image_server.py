"""The original lesson's image server: Flask's development server, Keras MobileNetV2 per request.

    python -m benchmarks.baseline.image_server --port 5001 [--labels imagenet_labels.txt]

Written from the lesson's description, as the yardstick classify_image is compared with:
`keras.applications.MobileNetV2` built at start (`weights=None` by default: the timing is the
same as with ImageNet weights, and no download is needed), then per POST the multipart field
`image` is loaded at 224 x 224, `preprocess_input`, `model.predict`, top-5 as JSON.
"""

from __future__ import annotations

import argparse
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

import keras
import numpy as np
from flask import Flask, jsonify, request
from keras.applications.mobilenet_v2 import MobileNetV2, preprocess_input

HOST = "127.0.0.1"
SIZE = (224, 224)
TOP = 5
CLASSES = 1000
NO_IMAGE = "No posted image. Should be attribute named image."


def read_labels(path: str | None) -> list[str]:
    """ImageNet's 1000 class names (a leading "background" line is dropped), or class numbers."""
    if path is None:
        return [f"class {index}" for index in range(CLASSES)]
    with open(path, encoding="utf-8") as handle:
        labels = [line.strip() for line in handle if line.strip()]
    return labels[1:] if len(labels) == CLASSES + 1 else labels


def create_app(weights: str | None, labels: list[str]) -> Flask:
    """The Flask app with MobileNetV2 built once, at start."""
    model = MobileNetV2(weights=weights)
    app = Flask(__name__)

    @app.route("/", methods=["POST"])
    def classify() -> tuple[object, int]:
        upload = request.files.get("image")
        if upload is None:
            return jsonify({"error": NO_IMAGE}), 400
        image = keras.utils.load_img(io.BytesIO(upload.read()), target_size=SIZE)
        batch = preprocess_input(np.expand_dims(keras.utils.img_to_array(image), axis=0))
        scores = model.predict(batch)[0]
        best = np.argsort(scores)[::-1][:TOP]
        predictions = [{"label": labels[i], "probability": float(scores[i])} for i in best]
        return jsonify({"predictions": predictions}), 200

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--labels", help="ImageNet labels, one a line")
    parser.add_argument("--weights", default=None, help="None (default) or imagenet")
    args = parser.parse_args()
    app = create_app(args.weights, read_labels(args.labels))
    app.run(host=HOST, port=args.port)  # threaded, as Flask's default


if __name__ == "__main__":
    main()
