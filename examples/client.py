"""Call both functions with `requests`, as the original lesson's client did.

    python examples/client.py --mpg-url http://127.0.0.1:8080 \\
        --image-url http://127.0.0.1:8081 --image cat.jpg
    python examples/client.py --mpg-url URL --set weight=50000     # see a field's error
    python examples/client.py --mpg-url https://REGION-PROJECT.cloudfunctions.net/predict_mpg \\
        --token "$(gcloud auth print-identity-token)"                 # a private function

Prints the prediction, or each error's field and message. A 503 (model still loading) is
retried once after its Retry-After. Exit status: 0 when every call succeeded, else 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

# The car of the lesson: a 1976 American V8.
LESSON_CAR: dict[str, float] = {"cylinders": 8, "displacement": 300, "horsepower": 78,
                                "weight": 3500, "acceleration": 20, "year": 76, "origin": 1}
MAX_RETRY_WAIT_S = 30.0
DEFAULT_TIMEOUT_S = 30.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mpg-url", help="URL of predict_mpg, e.g. http://127.0.0.1:8080")
    parser.add_argument("--image-url", help="URL of classify_image, e.g. http://127.0.0.1:8081")
    parser.add_argument("--image", type=Path, help="photo to classify (with --image-url)")
    parser.add_argument("--token", help="identity token for private functions "
                        "(gcloud auth print-identity-token); sent as Authorization: Bearer")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one value of the lesson's car; FIELD= leaves it out "
                        "(repeatable)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds to wait for each answer (default {DEFAULT_TIMEOUT_S:g})")
    args = parser.parse_args(argv)
    if not (args.mpg_url or args.image_url):
        parser.error("give --mpg-url, --image-url or both")
    if args.image_url and not args.image:
        parser.error("--image-url needs --image PATH")
    if args.image and not args.image.is_file():
        parser.error(f"--image {args.image}: no such file")
    return args


def car(changes: list[str]) -> dict[str, Any]:
    """The lesson's car with FIELD=VALUE changes (numbers stay numbers; FIELD= removes it)."""
    record: dict[str, Any] = dict(LESSON_CAR)
    for change in changes:
        name, _, text = change.partition("=")
        if not text:  # FIELD= leaves the field out
            record.pop(name, None)
            continue
        try:
            record[name] = float(text) if "." in text else int(text)
        except ValueError:
            record[name] = text
    return record


def send_with_retry(send: Callable[[], requests.Response]) -> requests.Response:
    """Send; on a 503 (model loading or unavailable) wait for its Retry-After and retry once."""
    response = send()
    if response.status_code == 503:
        wait = retry_after(response)
        print(f"  model unavailable (503); retrying once in {wait:g} s")
        time.sleep(wait)
        response = send()
    return response


def retry_after(response: requests.Response) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.0), MAX_RETRY_WAIT_S)
    except ValueError:  # an HTTP date: not sent by these functions
        return 1.0


def report(name: str, url: str, send: Callable[[], requests.Response],
           show: Callable[[dict[str, Any]], None]) -> bool:
    """Call one function and print its answer or its errors; True when it succeeded."""
    print(f"{name} ({url}):")
    try:
        response = send_with_retry(send)
    except requests.Timeout:
        print("  no answer in time (timeout); try again later or raise --timeout")
        return False
    except requests.ConnectionError as error:
        print(f"  cannot connect ({type(error).__name__}); is the function running at this URL?")
        return False
    try:
        body = response.json()
    except ValueError:  # e.g. a 403 page from the platform in front of a private function
        print(f"  HTTP {response.status_code}, not JSON: {response.text[:200]!r}")
        if response.status_code in (401, 403):
            print("  the function may be private: pass --token")
        return False
    if response.ok:
        show(body)
        return True
    print(f"  HTTP {response.status_code}, request id {body.get('id')}")
    for error in body.get("errors", []):
        print(f"  {error.get('field') or '(request)'}: {error.get('message')}")
    return False


def show_mpg(body: dict[str, Any]) -> None:
    model = body["model"]
    print(f"  {body['mpg']:.1f} miles per gallon (model {model['name']} {model['version']})")
    for warning in body.get("warnings", []):
        print(f"  warning: {warning['field']}: {warning['message']}")


def show_labels(body: dict[str, Any]) -> None:
    top = body["predictions"][0]
    print(f"  Recognized {top['label']}, probability {top['probability']:.1%}")
    for prediction in body["predictions"]:
        print(f"    {prediction['probability']:7.2%}  {prediction['label']}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    results = []
    if args.mpg_url:
        record = car(args.set)
        results.append(report(
            "predict_mpg", args.mpg_url,
            lambda: requests.post(args.mpg_url, json=record, headers=headers,
                                  timeout=args.timeout),
            show_mpg,
        ))
    if args.image_url:

        def upload() -> requests.Response:
            with open(args.image, "rb") as image:  # reopened for a retry
                return requests.post(args.image_url, files={"image": image}, headers=headers,
                                     timeout=args.timeout)

        results.append(report("classify_image", args.image_url, upload, show_labels))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
