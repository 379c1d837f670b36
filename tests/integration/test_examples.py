"""examples/: the Python client against real functions, and the Postman collection."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.colour_classifier import LABELS, photo
from tests.helpers import REPO_ROOT, FunctionServer, free_port

CLIENT = REPO_ROOT / "examples" / "client.py"
COLLECTION = REPO_ROOT / "examples" / "keras-functions.postman_collection.json"
SCHEMA_V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
VARIABLES = {"mpg_url", "image_url", "token"}
WEIGHT_ERROR = "Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140."


def run_client(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLIENT), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT, check=False)


def requests_in(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every request of a collection, folders flattened."""
    for item in items:
        if "item" in item:
            yield from requests_in(item["item"])
        else:
            yield item


def test_client_prints_the_lesson_cars_mpg(mpg_server: FunctionServer) -> None:
    result = run_client("--mpg-url", mpg_server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"^  (\d+\.\d) miles per gallon \(model mpg \w+\)$", result.stdout, re.M)
    assert match and 10 <= float(match.group(1)) <= 40, result.stdout


def test_client_prints_each_errors_field_and_message(mpg_server: FunctionServer) -> None:
    result = run_client("--mpg-url", mpg_server.url, "--set", "weight=50000",
                        "--set", "year=", "--set", "color=red")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith("  HTTP 400, request id ")
    assert lines[2:] == [f"  weight: {WEIGHT_ERROR}", "  year: Missing value: year.",
                         "  color: Unexpected field: color."]


def test_client_uploads_a_photo_as_the_lesson_did(colour_image_server: FunctionServer,
                                                  tmp_path: Path) -> None:
    # The tests' colour classifier: three classes, so three lines of probabilities.
    image = tmp_path / "green.jpg"
    image.write_bytes(photo("green"))
    result = run_client("--image-url", colour_image_server.url, "--image", str(image))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  Recognized green, probability " in result.stdout
    assert len(re.findall(r"^ {4} *\d+\.\d\d%  ", result.stdout, re.M)) == len(LABELS)


def test_client_waits_for_retry_after_and_retries_a_503_once(
        unloaded_image_server: FunctionServer, tmp_path: Path) -> None:
    photo = tmp_path / "tiny.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n")  # never decoded: the model is unavailable first
    result = run_client("--image-url", unloaded_image_server.url, "--image", str(photo))
    assert result.returncode == 1
    assert result.stdout.count("model unavailable (503); retrying once in ") == 1
    assert "  (request): Model unavailable: could not load " in result.stdout
    assert "Traceback" not in result.stderr


def test_client_reports_connection_errors_and_timeouts() -> None:
    refused = run_client("--mpg-url", f"http://127.0.0.1:{free_port()}")
    assert refused.returncode == 1
    assert "cannot connect" in refused.stdout and "Traceback" not in refused.stderr
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        slow = run_client("--mpg-url", f"http://127.0.0.1:{port}", "--timeout", "0.5")
    assert slow.returncode == 1
    assert "no answer in time (timeout)" in slow.stdout and "Traceback" not in slow.stderr


def test_client_refuses_incomplete_arguments() -> None:
    result = run_client("--image-url", "http://127.0.0.1:1")
    assert result.returncode == 2
    assert "--image-url needs --image PATH" in result.stderr


def test_postman_collection_uses_the_variables_everywhere() -> None:
    collection = json.loads(COLLECTION.read_text())
    assert collection["info"]["schema"] == SCHEMA_V21
    assert {variable["key"] for variable in collection["variable"]} == VARIABLES
    assert collection["auth"]["bearer"][0]["value"] == "{{token}}"
    items = list(requests_in(collection["item"]))
    assert len(items) == 14
    for item in items:
        url = item["request"]["url"]
        assert re.fullmatch(r"\{\{(mpg_url|image_url)\}\}(/[\w.]+)*(\?[\w=&]+)?", url["raw"]), url
        assert url["host"] == [url["raw"].split("/")[0].split("?")[0]]
    uploads = [item["request"]["body"]["formdata"] for item in items
               if item["request"].get("body", {}).get("mode") == "formdata"]
    assert [(part["key"], part["type"]) for parts in uploads for part in parts] == [
        ("image", "file")] * 2


