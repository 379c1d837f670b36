"""The original lesson's MPG server: Flask's development server, Keras `model.predict` per request.

    python -m benchmarks.baseline.mpg_server --port 5000 \
        --model model_bucket/mpg/<version>/model.keras

Written from the lesson's description, as the yardstick predict_mpg is compared with: the Keras
model is loaded at start, every POST is validated (missing, unexpected, out-of-bounds fields,
with the lesson's wording) and answered with `model.predict`.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

import keras
import numpy as np
from flask import Flask, jsonify, request

HOST = "127.0.0.1"
# The lesson's fields, in the model's input order, with the bounds of the Auto MPG data.
BOUNDS: dict[str, tuple[float, float]] = {
    "cylinders": (3, 8),
    "displacement": (68, 455),
    "horsepower": (46, 230),
    "weight": (1613, 5140),
    "acceleration": (8, 24.8),
    "year": (70, 82),
    "origin": (1, 3),
}


def validate(payload: object) -> list[str]:
    """The lesson's checks: every field present, no other field, every value within bounds."""
    if not isinstance(payload, dict):
        return ["Expected a JSON object."]
    errors = [f"Unexpected field: {name}." for name in payload if name not in BOUNDS]
    for name, (low, high) in BOUNDS.items():
        if name not in payload:
            errors.append(f"Missing value: {name}.")
        elif not isinstance(payload[name], int | float):
            errors.append(f"Not a number: {name}.")
        elif not low <= payload[name] <= high:
            errors.append(f"Out of bounds: {name}, has value of: {payload[name]}, "
                          f"but should be between {low:g} and {high:g}.")
    return errors


def create_app(model_path: str) -> Flask:
    """The Flask app with the Keras model loaded once, at start."""
    model = keras.models.load_model(model_path)
    app = Flask(__name__)

    @app.route("/", methods=["POST"])
    def predict() -> tuple[object, int]:
        payload = request.get_json(force=True, silent=True)
        errors = validate(payload)
        if errors:
            return jsonify({"errors": errors}), 400
        features = np.array([[payload[name] for name in BOUNDS]], dtype=np.float32)
        prediction = model.predict(features)
        return jsonify({"mpg": float(prediction[0][0])}), 200

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="path of the exported model.keras")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    create_app(args.model).run(host=HOST, port=args.port)  # threaded, as Flask's default


if __name__ == "__main__":
    main()
