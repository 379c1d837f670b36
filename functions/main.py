"""Cloud Functions entry points. Each one routes a request to its endpoint and answers JSON.

Deployed twice from this one source folder: `--entry-point predict_mpg` and
`--entry-point classify_image`. Locally:
    functions-framework --source functions/main.py --target predict_mpg --port 8080
"""

from __future__ import annotations

import flask
import functions_framework

from modelserve.config import load_settings
from modelserve.endpoint import Endpoint, LazyEndpoint
from modelserve.http import register_json_errors
from modelserve.logs import configure_logging
from modelserve.mpg import MpgTask

# Instance-wide state: settings are read once per instance, models load on first use.
SETTINGS = load_settings()
configure_logging(SETTINGS.log_level)
register_json_errors()
MPG = Endpoint(MpgTask(), SETTINGS.mpg_model_uri, SETTINGS)


def _image_endpoint() -> Endpoint:
    from modelserve.image import ImageTask  # Pillow: only where classify_image runs

    return Endpoint(ImageTask(), SETTINGS.image_model_uri, SETTINGS)


IMAGE = LazyEndpoint(_image_endpoint)


@functions_framework.http
def predict_mpg(request: flask.Request) -> flask.Response:
    """POST a car's seven attributes (or {"instances": [...]}) -> its predicted miles per gallon.

    GET / describes the model, GET /openapi.json documents the API, GET /healthz is liveness.
    """
    return MPG.handle(request)


@functions_framework.http
def classify_image(request: flask.Request) -> flask.Response:
    """POST a photo (multipart field `image`, or a raw image/* body) -> its top-k ImageNet labels.

    `?top_k=` 1..20 (default 5). GET /, /openapi.json and /healthz as for predict_mpg.
    """
    return IMAGE.handle(request)
