"""classify_image's floor: decode + resize + invoke in a loop, in one process, no HTTP.

    python -m benchmarks.inprocess --model model_bucket/image --image photo.jpg --seconds 10

Uses the functions' own code (`modelserve.image_decoding.decode_image`, `ImageModel.top`), so the
difference to the served p50 is what HTTP, multipart parsing and the framework cost.
Prints one JSON object: iterations, seconds, p50_ms, p99_ms.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.loadgen import percentile
from modelserve.app import build_endpoint
from modelserve.declarations import declaration
from modelserve.image_decoding import decode_image
from modelserve.tasks.image_classification import TOP_K_DEFAULT

WARMUP_ITERATIONS = 20


def loop(model_uri: str, image: bytes, seconds: float) -> dict[str, float]:
    """Classify `image` again and again for `seconds`; the latency of each round in ms."""
    with tempfile.TemporaryDirectory() as cache:
        endpoint = build_endpoint(declaration("classify_image"),
                                  {"IMAGE_MODEL_URI": model_uri, "MODEL_CACHE_DIR": cache})
        model = endpoint.model.get()
    size = model.preprocessing.size
    max_pixels = endpoint.settings.limits.max_image_pixels

    def once() -> None:
        model.top(decode_image(image, max_pixels, size), TOP_K_DEFAULT)

    for _ in range(WARMUP_ITERATIONS):
        once()
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while (started := time.perf_counter()) < end:
        once()
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "iterations": len(latencies),
        "seconds": seconds,
        "rate": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="image model URI (root or version)")
    parser.add_argument("--image", required=True, type=Path)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(loop(args.model, args.image.read_bytes(), args.seconds)))


if __name__ == "__main__":
    main()
