"""The floors predict_mpg is measured against, under functions-framework.

    functions-framework --source benchmarks/floor/main.py --target empty
    MINIMAL_TFLITE=model_bucket/mpg/<version>/model.tflite \
        functions-framework --source benchmarks/floor/main.py --target minimal_mpg

`empty` is the platform's floor: nothing can answer faster. `minimal_mpg` is the least any
function serving the MPG model must do on top of it, with none of what the HTTP contract adds
(validation and its messages, strict JSON, request ids, CORS, the structured log line): it
shows how much of predict_mpg's distance to the empty function is left once those are gone.
"""

from __future__ import annotations

import functools
import json
import os

import flask
import functions_framework

# The same answer for every request, built once for the instance.
ANSWER = b'{"ok": true}'
FEATURES = ("cylinders", "displacement", "horsepower", "weight", "acceleration", "year",
            "origin")


@functions_framework.http
def empty(request: flask.Request) -> flask.Response:
    """Read the body, answer a constant JSON object."""
    request.get_data()
    return flask.Response(ANSWER, status=200, mimetype="application/json")


class _Model:
    """One LiteRT interpreter over MINIMAL_TFLITE, made on first use (numpy and LiteRT are
    imported only by the process serving `minimal_mpg`)."""

    def __init__(self) -> None:
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        self.np = np
        self.interpreter = Interpreter(model_path=os.environ["MINIMAL_TFLITE"], num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def predict(self, values: list[float]) -> float:
        self.interpreter.set_tensor(self.input, self.np.array([values], dtype=self.np.float32))
        self.interpreter.invoke()
        return float(self.interpreter.get_tensor(self.output)[0][0])


@functools.cache  # one model for the instance
def _model() -> _Model:
    return _Model()


@functions_framework.http
def minimal_mpg(request: flask.Request) -> flask.Response:
    """Parse the JSON record, run the model, answer {"mpg": ...}; no checks, no log line."""
    record = json.loads(request.get_data())
    mpg = _model().predict([float(record[name]) for name in FEATURES])
    return flask.Response(json.dumps({"mpg": round(mpg, 3)}), status=200,
                          mimetype="application/json")
