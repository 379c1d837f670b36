"""GET / answers JSON to API clients and the demo page to browsers (no browser needed here)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import requests

from tests.helpers import LESSON_REQUEST, FunctionServer

TIMEOUT = 10
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
INLINE_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)
# Anything that would make the page fetch or link elsewhere: absolute or protocol-relative URLs.
EXTERNAL = re.compile(r"https?://|(?:src|href|action)\s*=\s*[\"']?//|url\(\s*[\"']?//", re.I)


@pytest.fixture(params=["predict_mpg", "classify_image"])
def server(request: pytest.FixtureRequest) -> FunctionServer:
    name = "mpg_server" if request.param == "predict_mpg" else "unloaded_image_server"
    return request.getfixturevalue(name)


def get_root(server: FunctionServer, accept: str | None) -> requests.Response:
    # requests sends Accept: */* (as curl does) unless told otherwise; None drops the header.
    headers = {} if accept == "requests default" else {"Accept": accept}
    return requests.get(server.url + "/", headers=headers, timeout=TIMEOUT)


@pytest.mark.parametrize("accept", ["application/json", "*/*", "requests default", None,
                                    "application/json, text/html;q=0.5"])
def test_api_clients_get_json_metadata(server: FunctionServer, accept: str | None) -> None:
    response = get_root(server, accept)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Vary"] == "Accept"
    body = response.json()
    assert body["id"] == response.headers["X-Request-Id"]
    assert body["function"] == server.target


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html"])
def test_browsers_get_the_self_contained_demo_page(server: FunctionServer, accept: str) -> None:
    response = get_root(server, accept)
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


def test_csp_allows_exactly_the_pages_inline_blocks(server: FunctionServer) -> None:
    response = get_root(server, BROWSER_ACCEPT)
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


def test_the_page_echoes_the_request_id(server: FunctionServer) -> None:
    response = requests.get(server.url, headers={"Accept": "text/html", "X-Request-Id": "page-1"},
                            timeout=TIMEOUT)
    assert response.headers["X-Request-Id"] == "page-1"


def test_posts_answer_json_whatever_the_browser_accepts(mpg_server: FunctionServer) -> None:
    response = requests.post(mpg_server.url, json=LESSON_REQUEST,
                             headers={"Accept": BROWSER_ACCEPT}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.json()["mpg"], float)


def test_other_paths_stay_json_for_browsers(mpg_server: FunctionServer) -> None:
    for path, status in (("/openapi.json", 200), ("/healthz", 200), ("/favicon.ico", 404)):
        response = requests.get(mpg_server.url + path, headers={"Accept": BROWSER_ACCEPT},
                                timeout=TIMEOUT)
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"

