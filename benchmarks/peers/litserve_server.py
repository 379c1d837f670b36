"""predict_mpg and classify_image as LitServe servers, the way LitServe's documentation writes
them: a LitAPI with setup/decode_request/predict/encode_response, a pydantic request model
with the training ranges as constraints, the multipart upload read from the form, and
LitServer's default workers (one inference worker per device, one API server process).

    PEER_MODEL_DIR=model_bucket/mpg/<version> python -m benchmarks.peers.litserve_server \
        --task mpg --port 8000          # POST /predict, JSON
    PEER_MODEL_DIR=<image version> python -m benchmarks.peers.litserve_server --task image
                                        # POST /predict, multipart field `image`
"""


# No `from __future__ import annotations`: FastAPI reads decode_request's annotation as a type.
import argparse
from typing import Annotated, Any

import litserve as ls
from pydantic import BaseModel, Field, create_model

from benchmarks.peers.tflite_models import ImageClassifier, MpgModel, feature_ranges

HOST = "127.0.0.1"


def mpg_request_model() -> type[BaseModel]:
    """The request body: each feature typed, between its training min and max."""
    integer = {"cylinders", "year", "origin"}
    fields = {name: (Annotated[int if name in integer else float, Field(ge=low, le=high)], ...)
              for name, (low, high) in feature_ranges().items()}
    return create_model("MpgRequest", **fields)


MpgRequest = mpg_request_model()


class MpgAPI(ls.LitAPI):
    """Miles per gallon from the seven Auto MPG features."""

    def setup(self, device: str) -> None:
        self.model = MpgModel()

    def decode_request(self, request: MpgRequest) -> dict[str, float]:
        return request.model_dump()

    def predict(self, record: dict[str, float]) -> float:
        return self.model.predict(record)

    def encode_response(self, output: float) -> dict[str, float]:
        return {"mpg": output}


class ImageAPI(ls.LitAPI):
    """The top five ImageNet labels of an uploaded image (multipart field `image`)."""

    def setup(self, device: str) -> None:
        self.model = ImageClassifier()

    # Unannotated, as LitServe's upload example: it then passes the parsed multipart form.
    def decode_request(self, request) -> bytes:
        return request["image"].file.read()

    def predict(self, data: bytes) -> list[dict[str, Any]]:
        return self.model.classify_bytes(data)

    def encode_response(self, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("mpg", "image"), required=True)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    api = MpgAPI() if args.task == "mpg" else ImageAPI()
    server = ls.LitServer(api, accelerator="cpu")
    server.run(host=HOST, port=args.port, generate_client_file=False)


if __name__ == "__main__":
    main()
