"""classify_image in-process on the shared ImageNet model: its known labels for the shared photos.

Only what needs ImageNet itself is here (the right label for a photo, EXIF orientation
mattering to a model that sees shapes, 20 distinct classes); every other image test runs on
the tests' own colour classifier. Without IMAGENET_TFLITE and SHARED_IMAGES the whole module
is one skip.
"""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from tests.images_corpus import encode, sideways_jpeg
from tests.inprocess import client, image_environ, upload
from tests.integration.fixtures_image import (
    import_imagenet_bucket,
    shared_photo,
    skip_module_without_imagenet,
)

skip_module_without_imagenet()

CAT_CLASSES = {"Egyptian cat", "tabby, tabby cat", "tiger cat", "Persian cat",
               "Siamese cat, Siamese"}
EXPECTED_TOP1 = {  # from ../shared/README.md
    "cat.bmp": "Egyptian cat",
    "bird.bmp": "chickadee",
    "grace_hopper.bmp": "military uniform",
    "missvickie_potato_chips.bmp": "packet",
}


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    folder = tmp_path_factory.mktemp("imagenet")
    return client("classify_image", image_environ(folder, import_imagenet_bucket(
        folder / "bucket")))


def cat() -> Image.Image:
    return Image.open(io.BytesIO(shared_photo("cat.bmp"))).convert("RGB")


def top1(response: TestResponse) -> str:
    assert response.status_code == 200, response.text
    return response.get_json()["predictions"][0]["label"]


@pytest.mark.parametrize(("name", "label"), sorted(EXPECTED_TOP1.items()))
def test_shared_photos_give_their_known_top1(imagenet: FlaskClient, name: str,
                                             label: str) -> None:
    response = upload(imagenet, shared_photo(name), filename=name)
    assert top1(response) == label
    body = response.get_json()
    assert len(body["predictions"]) == 5
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1.01
    assert body["model"]["name"] == "image"


def test_large_jpeg_photo_is_a_cat(imagenet: FlaskClient) -> None:
    assert top1(upload(imagenet, shared_photo("cat_720p.jpg"))) in CAT_CLASSES


def test_top_k_20_gives_twenty_distinct_classes(imagenet: FlaskClient) -> None:
    predictions = upload(imagenet, shared_photo("cat.bmp"), query="?top_k=20").get_json()[
        "predictions"]
    assert len(predictions) == 20
    assert len({p["class_id"] for p in predictions}) == 20


def test_sideways_exif_photo_gives_the_upright_top1(imagenet: FlaskClient) -> None:
    assert top1(upload(imagenet, sideways_jpeg(cat()), filename="upload.bin")) == "Egyptian cat"


def test_sideways_photo_without_orientation_is_seen_differently(imagenet: FlaskClient) -> None:
    # Control for the EXIF test above: the tag, not luck, makes the answer the same. (The
    # colour classifier averages over the image, so rotations cannot change its answer.)
    rotated = encode(cat().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95)
    upright = upload(imagenet, encode(cat(), "JPEG", quality=95)).get_json()["predictions"]
    turned = upload(imagenet, rotated).get_json()["predictions"]
    assert turned != upright


