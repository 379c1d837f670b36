"""classify_image's floor: decode + resize + invoke in a loop, in one process, no HTTP.

    python -m benchmarks.inprocess --model model_bucket/image --image photo.jpg --seconds 10
    python -m benchmarks.inprocess ... --processes 2    # the machine's compute limit

Uses the functions' own code (`modelserve.image_decoding.decode_image`, `ImageModel.top`), so the
difference to the served p50 is what HTTP, multipart parsing and the framework cost.
Prints one JSON object: iterations, seconds, rate, p50_ms, p99_ms. With `--processes N`,
N such loops run at the same time, each in its own process with its own interpreter (the
most this machine can classify per second with the functions' code): it prints the rate of
each and their sum.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from benchmarks.loadgen import percentile
from modelserve.app import build_endpoint
from modelserve.declarations import declaration
from modelserve.image_decoding import decode_image
from modelserve.tasks.image_classification import TOP_K_DEFAULT

WARMUP_ITERATIONS = 20
START_DELAY_S = 3.0  # every process loads its model and warms up before the common start


def loop(model_uri: str, image: bytes, seconds: float,
         start_at: float | None = None) -> dict[str, float]:
    """Classify `image` again and again for `seconds` (from `start_at`, a time.time(), if
    given); the rate and latency percentiles in ms."""
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
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
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


def parallel(model_uri: str, image: bytes, seconds: float, processes: int) -> dict[str, object]:
    """`processes` loops at once, started together; each one's rate and their sum."""
    start_at = time.time() + START_DELAY_S
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(loop, [(model_uri, image, seconds, start_at)] * processes)
    rates = [result["rate"] for result in results]
    return {"processes": processes, "rate": sum(rates), "rates": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="image model URI (root or version)")
    parser.add_argument("--image", required=True, type=Path)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=1,
                        help="loops in parallel, one process and interpreter each")
    args = parser.parse_args()
    image = args.image.read_bytes()
    if args.processes > 1:
        print(json.dumps(parallel(args.model, image, args.seconds, args.processes)))
    else:
        print(json.dumps(loop(args.model, image, args.seconds)))


if __name__ == "__main__":
    main()
