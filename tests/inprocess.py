"""In-process functions: a declared function built from a mapping, called via Flask's client.

No socket and no subprocess: `create_app(name, environ)` builds the same Endpoint main.py
binds, and werkzeug's test client drives it. os.environ is never read or changed.
"""

from __future__ import annotations

import io
from pathlib import Path

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from modelserve.app import create_app
from tests.helpers import COMMITTED_BUCKET


def client(function: str, environ: dict[str, str]) -> FlaskClient:
    """A test client of the declared `function` configured by `environ` alone."""
    return create_app(function, environ).test_client()


def mpg_environ(folder: Path, model_root: Path = COMMITTED_BUCKET / "mpg",
                **extra: str) -> dict[str, str]:
    """predict_mpg's environment: a model root and a private cache under `folder`."""
    return {"MPG_MODEL_URI": str(model_root), "MODEL_CACHE_DIR": str(folder / "cache"),
            "MAX_BATCH_SIZE": "8", **extra}


def image_environ(folder: Path, model_root: Path, **extra: str) -> dict[str, str]:
    """classify_image's environment: a model root and a private cache under `folder`."""
    return {"IMAGE_MODEL_URI": str(model_root), "MODEL_CACHE_DIR": str(folder / "cache"),
            **extra}


def upload(app: FlaskClient, data: bytes, filename: str = "photo.jpg", query: str = "",
           field: str = "image", path: str = "/", **kwargs: object) -> TestResponse:
    """The lesson's upload: a multipart form whose field `image` holds the file."""
    return app.post(path + query, data={field: (io.BytesIO(data), filename)},
                    content_type="multipart/form-data", **kwargs)
