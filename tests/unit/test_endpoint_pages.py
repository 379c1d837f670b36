"""GET / answers JSON to API clients and the demo page to browsers, in-process (no browser)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.helpers import LESSON_REQUEST
from tests.inprocess import client, image_environ, mpg_environ

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
INLINE_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)
# Anything that would make the page fetch or link elsewhere: absolute or protocol-relative URLs.
EXTERNAL = re.compile(r"https?://|(?:src|href|action)\s*=\s*[\"']?//|url\(\s*[\"']?//", re.I)
NO_ACCEPT = "no Accept header"


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FlaskClient]:
    """predict_mpg on the committed model; classify_image with no model in its bucket (its
    pages and GETs work without one)."""
    folder = tmp_path_factory.mktemp("pages")
    return {
        "predict_mpg": client("predict_mpg", mpg_environ(folder / "mpg")),
        "classify_image": client("classify_image",
                                 image_environ(folder / "image", folder / "bucket" / "image")),
    }


@pytest.fixture(params=["predict_mpg", "classify_image"])
def app(request: pytest.FixtureRequest, apps: dict[str, FlaskClient]) -> FlaskClient:
    return apps[request.param]


def get_root(app: FlaskClient, accept: str) -> TestResponse:
    # Werkzeug's client sends no Accept header unless told; "*/*" is what requests and curl send.
    return app.get("/", headers={} if accept == NO_ACCEPT else {"Accept": accept})


def function_of(app: FlaskClient) -> str:
    return app.application.name


@pytest.mark.parametrize("accept", ["application/json", "*/*", NO_ACCEPT, "",
                                    "application/json, text/html;q=0.5"])
def test_api_clients_get_json_metadata(app: FlaskClient, accept: str) -> None:
    response = get_root(app, accept)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Vary"] == "Accept"
    body = response.get_json()
    assert body["id"] == response.headers["X-Request-Id"]
    assert body["function"] == function_of(app)


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html"])
def test_browsers_get_the_self_contained_demo_page(app: FlaskClient, accept: str) -> None:
    response = get_root(app, accept)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Vary"] == "Accept"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-Id"]
    html = response.text
    assert html.startswith("<!doctype html>")
    assert EXTERNAL.search(html) is None, EXTERNAL.search(html)
    assert not re.search(r"<(script|link)[^>]*\s(src|href)=\"(?!data:)", html)  # all inlined
    assert '<html lang="en">' in html and 'aria-live="polite"' in html


def test_csp_allows_exactly_the_pages_inline_blocks(app: FlaskClient) -> None:
    response = get_root(app, BROWSER_ACCEPT)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    for kind in ("script", "style"):
        blocks = [text for tag, text in INLINE_BLOCK.findall(response.text) if tag == kind]
        hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
            for text in blocks
        ]
        assert blocks and policy[f"{kind}-src"].split() == hashes


def test_the_page_echoes_the_request_id(app: FlaskClient) -> None:
    response = app.get("/", headers={"Accept": "text/html", "X-Request-Id": "page-1"})
    assert response.headers["X-Request-Id"] == "page-1"


@pytest.mark.parametrize("path", ["/", "/api/mpg"])
def test_posts_answer_json_whatever_the_browser_accepts(apps: dict[str, FlaskClient],
                                                        path: str) -> None:
    response = apps["predict_mpg"].post(path, json=LESSON_REQUEST,
                                        headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.get_json()["mpg"], float)


def test_other_paths_stay_json_for_browsers(apps: dict[str, FlaskClient]) -> None:
    for path, status in (("/openapi.json", 200), ("/healthz", 200), ("/favicon.ico", 404),
                         ("/api/mpg", 405)):
        response = apps["predict_mpg"].get(path, headers={"Accept": BROWSER_ACCEPT})
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"


def test_unloaded_image_function_answers_503_to_posts(apps: dict[str, FlaskClient]) -> None:
    for path in ("/", "/api/image"):
        response = apps["classify_image"].post(path, data=b"\xff\xd8\xff",
                                               content_type="image/jpeg")
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        error = response.get_json()["errors"][0]
        assert error["code"] == "model_unavailable"
        assert "LATEST does not exist" in error["message"]
    assert apps["classify_image"].get("/healthz").status_code == 200
