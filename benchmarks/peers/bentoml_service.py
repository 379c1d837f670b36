"""predict_mpg and classify_image as BentoML services, the way BentoML's documentation writes
them: a class per model, `@bentoml.api` methods with typed inputs (pydantic Field constraints
from the training ranges; a PIL image for the multipart upload), the default workers.

    PEER_MODEL_DIR=model_bucket/mpg/<version> \
        bentoml serve benchmarks.peers.bentoml_service:Mpg --host 127.0.0.1 --port 3000
    curl -X POST localhost:3000/predict -H content-type:application/json -d '{"cylinders": 8, ...}'
    PEER_MODEL_DIR=<image version> bentoml serve benchmarks.peers.bentoml_service:Classifier
    curl -X POST localhost:3000/classify -F image=@photo.jpg
"""

from __future__ import annotations

from typing import Annotated, Any

import bentoml
from PIL.Image import Image
from pydantic import Field

from benchmarks.peers.tflite_models import ImageClassifier, MpgModel, feature_ranges

_RANGES = feature_ranges()


def _range(name: str) -> Any:
    low, high = _RANGES.get(name, (None, None))
    return Field(ge=low, le=high)


@bentoml.service
class Mpg:
    """Miles per gallon from the seven Auto MPG features."""

    def __init__(self) -> None:
        self.model = MpgModel()

    @bentoml.api
    def predict(
        self,
        cylinders: Annotated[int, _range("cylinders")],
        displacement: Annotated[float, _range("displacement")],
        horsepower: Annotated[float, _range("horsepower")],
        weight: Annotated[float, _range("weight")],
        acceleration: Annotated[float, _range("acceleration")],
        year: Annotated[int, _range("year")],
        origin: Annotated[int, _range("origin")],
    ) -> dict[str, float]:
        record = {"cylinders": cylinders, "displacement": displacement,
                  "horsepower": horsepower, "weight": weight, "acceleration": acceleration,
                  "year": year, "origin": origin}
        return {"mpg": self.model.predict(record)}


@bentoml.service
class Classifier:
    """The top five ImageNet labels of an uploaded image."""

    def __init__(self) -> None:
        self.model = ImageClassifier()

    @bentoml.api
    def classify(self, image: Image) -> dict[str, list[dict[str, Any]]]:
        return {"predictions": self.model.classify(image)}
