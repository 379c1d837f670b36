"""Writing a run down: RESULTS.md (tables, ratios, machine, command), results.json and a chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.results import (
    CEILING,
    FLOOR,
    HEADLINE_CONNECTIONS,
    LESSON_MPG,
    MINIMAL_MPG,
    MPG,
    Check,
    Run,
    ServerResult,
    checks,
)

RESULTS_MD = "RESULTS.md"
RESULTS_JSON = "results.json"
CHART_PNG = "results.png"
CHART_SIZE_IN = (14, 4.8)
CHART_DPI = 110
PASS_COLOR, FAIL_COLOR = "#2e7d32", "#c62828"
CONNECTION_COLORS = {1: "#90caf9", 8: "#1565c0"}
RSS_COLOR, PSS_COLOR = "#ffb74d", "#e65100"


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _server_rows(run: Run) -> list[str]:
    rows = ["| server | connections | req/s | p50 ms | p99 ms | server CPU us/req | non-200 |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for server in run.servers.values():
        for connections, point in sorted(server.points.items()):
            cpu = server.cpu_us.get(connections, 0.0)
            rows.append(f"| {server.label} | {connections} | {_f(point.rps, 0)} | "
                        f"{_f(point.p50_ms, 2)} | {_f(point.p99_ms, 2)} | {_f(cpu, 0)} | "
                        f"{point.errors} |")
    loop = run.inprocess
    rows.append(f"| classify_image in-process loop (decode + resize + invoke, no HTTP) | - | "
                f"{_f(loop.rate, 0)} | {_f(loop.p50_ms, 2)} | {_f(loop.p99_ms, 2)} | - | - |")
    limit = run.compute_limit
    if limit is not None:
        each = " + ".join(_f(rate, 0) for rate in limit.rates)
        rows.append(f"| compute limit: {limit.processes} in-process loops in parallel, one "
                    f"interpreter each ({each}) | - | {_f(limit.rate, 0)} | - | - | - | - |")
    return rows


def _round_rows(run: Run) -> list[str]:
    """The head-to-head rounds: each function and its peers loaded in turn, side by side."""
    if not run.rounds:
        return []
    rows = [f"## Head to head: each function and its peers side by side, loaded in turn "
            f"({HEADLINE_CONNECTIONS} connections)", "",
            "All three servers of a group run at once; each round loads each for a few seconds "
            "(the order rotates), so load from elsewhere on the machine falls on all three. The "
            "throughput targets against the peers use these medians.", "",
            "| server | req/s per round | median req/s |", "|---|---|---:|"]
    for key, values in run.rounds.items():
        label = run.servers[key].label if key in run.servers else key
        rows.append(f"| {label} | {', '.join(_f(v, 0) for v in values)} | "
                    f"{_f(statistics.median(values), 0)} |")
    return [*rows, ""]


BUCKET_TIMINGS = ("resolve_ms", "download_ms", "verify_ms", "load_ms", "first_inference_ms",
                  "total_ms")


def _bucket_cold_rows(run: Run) -> list[str]:
    """Cold starts from gs:// against the local folder, and where the gs:// start's time went."""
    if not run.bucket_cold:
        return []
    rows = ["## Cold start from the bucket: gs:// (Cloud Storage emulator on loopback) against "
            "the local folder", "",
            "Interleaved (local, gs://, gs://, local, ...), each with an empty cache; the model "
            "root is named, so LATEST is read too.", "",
            "| function | local median s (min-max) | gs:// median s (min-max) | gs:// / local | "
            "starts each |", "|---|---:|---:|---:|---:|"]
    for cold in run.bucket_cold.values():
        local, bucket = cold.local_s, cold.bucket_s
        rows.append(f"| {cold.target} | {_f(statistics.median(local), 3)} "
                    f"({_f(min(local), 3)}-{_f(max(local), 3)}) | "
                    f"{_f(statistics.median(bucket), 3)} ({_f(min(bucket), 3)}-"
                    f"{_f(max(bucket), 3)}) | {cold.ratio:.2f}x | {len(local)} |")
    rows += ["", "The gs:// starts' cold-start log line (medians, ms): resolve = the reader's "
             "creation, LATEST and manifest; download = the model files.", "",
             "| function | " + " | ".join(BUCKET_TIMINGS) + " |",
             "|---|" + "---:|" * len(BUCKET_TIMINGS)]
    for cold in run.bucket_cold.values():
        rows.append(f"| {cold.target} | " + " | ".join(
            _f(cold.median_timing_ms(name), 1) for name in BUCKET_TIMINGS) + " |")
    return [*rows, ""]


def _measured(server: ServerResult) -> bool:
    return server.key != CEILING


def _cold_rows(run: Run) -> list[str]:
    rows = ["| server | median s | min s | max s | starts |", "|---|---:|---:|---:|---:|"]
    for server in filter(_measured, run.servers.values()):
        starts = server.cold_starts_s
        rows.append(f"| {server.label} | {_f(server.cold_start_s, 3)} | {_f(min(starts), 3)} | "
                    f"{_f(max(starts), 3)} | {len(starts)} |")
    return rows


def _memory_rows(run: Run) -> list[str]:
    rows = ["| server | peak RSS MB (sum over the tree) | peak PSS MB (shared pages split) |",
            "|---|---:|---:|"]
    for server in filter(_measured, run.servers.values()):
        if server.memory is not None:
            rows.append(f"| {server.label} | {_f(server.memory.rss_mb)} | "
                        f"{_f(server.memory.pss_mb)} |")
    return rows


def _install_rows(run: Run) -> list[str]:
    install = run.install
    if install is None:
        return ["Not measured in this run (no cached figures; `python -m benchmarks.venvsize`)."]
    source = "cached from an earlier run" if install.cached else "measured in this run"
    peers = [f"| `{spec}` | {_f(mb)} |" for spec, mb in run.peer_install_mb.items()]
    peer_note = (" The peers' environments (benchmarks/.work/venv-<peer>) are measured the "
                 "same way once, when they are created." if peers else "")
    return ["| dependency set | installed MB |", "|---|---:|",
            f"| `{install.runtime_spec}` | {_f(install.runtime_mb)} |",
            f"| `{install.tensorflow_spec}` | {_f(install.tensorflow_mb)} |", *peers,
            "", f"Fresh virtual environments minus an empty one, `du -sk`; {source} "
            f"(key {install.key}: requirements hash, Python, platform).{peer_note}"]


# The design's table "Why LiteRT at serving time" (2-core machine, one earlier run).
DESIGN_FIGURES = (
    ("empty function req/s, 8 conn", "1,925", lambda run: _f(run.servers[FLOOR].rps(), 0)),
    ("predict_mpg req/s, 8 conn (design: the 40-line prototype)", "1,600",
     lambda run: _f(run.servers[MPG].rps(), 0)),
    ("predict_mpg p50 ms, 8 conn", "4.9", lambda run: _f(run.servers[MPG].p50_ms(), 2)),
    ("lesson MPG server req/s, 8 conn", "31", lambda run: _f(run.servers[LESSON_MPG].rps(), 0)),
    ("lesson MPG server p50 ms, 8 conn", "247",
     lambda run: _f(run.servers[LESSON_MPG].p50_ms(), 0)),
    ("spawn to first 200 s: empty / predict_mpg / lesson", "0.15 / 0.18 / 1.86",
     lambda run: " / ".join(_f(run.servers[k].cold_start_s, 2) for k in (FLOOR, MPG, LESSON_MPG))),
    ("resident MB: empty / predict_mpg / lesson", "64 / 108 / 600",
     lambda run: " / ".join(_f(run.servers[k].memory.rss_mb, 0) if run.servers[k].memory
                            else "-" for k in (FLOOR, MPG, LESSON_MPG))),
)


def _design_rows(run: Run) -> list[str]:
    rows = ["| figure | design table | this run |", "|---|---:|---:|"]
    rows += [f"| {name} | {design} | {now(run)} |" for name, design, now in DESIGN_FIGURES]
    return rows


def _floor_rows(run: Run) -> list[str]:
    """predict_mpg's distance to the empty function, split at the minimal MPG function."""
    servers, n = run.servers, HEADLINE_CONNECTIONS
    if MINIMAL_MPG not in servers:
        return []
    chain = [servers[FLOOR], servers[MINIMAL_MPG], servers[MPG]]
    rows = ["", f"Context, not targets ({n} conn): the empty function, the least a function "
            "serving the MPG model must add (parse, invoke, answer), and predict_mpg.", "",
            "| server | req/s | / the row above | server CPU us/req | + us/req |",
            "|---|---:|---:|---:|---:|"]
    above = None
    for server in chain:
        cpu = server.cpu_us.get(n, 0.0)
        ratio = f"{server.rps() / above.rps():.2f}x" if above else "-"
        extra = _f(cpu - above.cpu_us.get(n, 0.0), 0) if above else "-"
        rows.append(f"| {server.label} | {_f(server.rps(), 0)} | {ratio} | {_f(cpu, 0)} | "
                    f"{extra} |")
        above = server
    return rows


def _check_rows(found: list[Check]) -> list[str]:
    rows = ["| target | measured | rule | result |", "|---|---:|---|---|"]
    for check in found:
        rows.append(f"| {check.claim} | {_f(check.value, 2)}{check.unit} | {check.rule} | "
                    f"**{check.verdict}** |")
    return rows


def markdown(run: Run, command: str, notes: list[str]) -> str:
    """RESULTS.md: what was measured, on what, how, and which targets pass."""
    machine, settings = run.machine, run.settings
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {machine['date']}",
        f"- Command: `{command}` ({settings['mode']} mode: {settings['duration']} per point after "
        f"{settings['warmup']} warm-up, {settings['cold_starts']} cold starts per server)",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory']} memory, "
        f"{machine['os']}, Python {machine['python']}",
        f"- Load average before / after: {machine['load_before']} / {machine['load_after']}",
        f"- Versions: {machine['versions']}",
        f"- Function settings (defaults unless set in the environment): {settings['functions']}",
        f"- Load generator: {settings['loadgen']}",
        *[f"- {note}" for note in notes],
        "",
        "## Targets (ratios within this one run)",
        "",
        *_check_rows(checks(run)),
        *_floor_rows(run),
        "",
        "## Warm throughput and latency (keep-alive connections, POST /)",
        "",
        *_server_rows(run),
        "",
        "Server CPU: user + system CPU time of the server's process tree during the point "
        "(warm-up included) divided by the answers it gave; it is what each request costs, "
        "and moves much less than req/s when other work shares the machine.",
        "",
        "## Cold start: spawn to the first 200 on a real POST (local bucket, empty cache)",
        "",
        *_cold_rows(run),
        "",
        *_round_rows(run),
        *_bucket_cold_rows(run),
        "## Peak resident memory of the process tree (sampled from /proc during the run)",
        "",
        *_memory_rows(run),
        "",
        "## Runtime dependency install size",
        "",
        *_install_rows(run),
        "",
        "## Against the design's figures (another run: indicative only)",
        "",
        *_design_rows(run),
        "",
        f"![throughput, cold start and memory]({CHART_PNG})",
        "",
    ]
    return "\n".join(lines)


def as_json(run: Run, command: str) -> dict[str, Any]:
    """The run as plain data, for tests and later comparison."""
    servers = {}
    for key, server in run.servers.items():
        servers[key] = {
            "label": server.label,
            "points": {str(c): {"rps": p.rps, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms,
                                "ok": p.ok, "errors": p.errors, "processes": p.processes,
                                "completed": p.completed,
                                "server_cpu_us": server.cpu_us.get(c, 0.0)}
                       for c, p in server.points.items()},
            "cold_starts_s": server.cold_starts_s,
            "cold_start_median_s": server.cold_start_s,
            "peak_rss_mb": server.memory.rss_mb if server.memory else None,
            "peak_pss_mb": server.memory.pss_mb if server.memory else None,
        }
    install = run.install
    return {
        "command": command,
        "machine": run.machine,
        "settings": run.settings,
        "servers": servers,
        "inprocess": vars(run.inprocess),
        "compute_limit": None if run.compute_limit is None else {
            "processes": run.compute_limit.processes, "rate": run.compute_limit.rate,
            "rates": list(run.compute_limit.rates)},
        "bucket_cold": {target: {"local_s": cold.local_s, "bucket_s": cold.bucket_s,
                                 "ratio": cold.ratio, "bucket_timings_ms": cold.bucket_timings_ms}
                        for target, cold in run.bucket_cold.items()},
        "peer_install_mb": run.peer_install_mb,
        "rounds": run.rounds,
        "install": None if install is None else {
            "runtime_mb": install.runtime_mb, "tensorflow_mb": install.tensorflow_mb,
            "ratio": install.ratio, "cached": install.cached},
        "checks": [{"claim": c.claim, "value": c.value, "rule": c.rule, "passed": c.passed}
                   for c in checks(run)],
    }


def chart(run: Run, path: Path) -> None:
    """Three panels: req/s per connection count, median cold start, peak RSS and PSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [s for s in run.servers.values() if _measured(s)]
    names = [s.key for s in servers]
    figure, (speed, cold, memory) = plt.subplots(1, 3, figsize=CHART_SIZE_IN)
    width = 0.4
    for offset, connections in ((-width / 2, 1), (width / 2, 8)):
        values = [s.points[connections].rps if connections in s.points else 0 for s in servers]
        speed.bar([i + offset for i in range(len(servers))], values, width,
                  label=f"{connections} conn", color=CONNECTION_COLORS[connections])
    speed.set_yscale("log")
    speed.set_title("warm throughput (req/s, log scale)")
    speed.legend()
    cold.bar(names, [s.cold_start_s for s in servers], color="#7e57c2")
    cold.set_title("spawn to first 200 (s, median)")
    rss = [s.memory.rss_mb if s.memory else 0 for s in servers]
    pss = [s.memory.pss_mb if s.memory else 0 for s in servers]
    memory.bar([i - width / 2 for i in range(len(servers))], rss, width, label="RSS",
               color=RSS_COLOR)
    memory.bar([i + width / 2 for i in range(len(servers))], pss, width, label="PSS",
               color=PSS_COLOR)
    memory.set_title("peak memory of the process tree (MB)")
    memory.legend()
    for axis in (speed, cold, memory):
        axis.set_xticks(range(len(servers)), names, rotation=30, ha="right")
    passed = sum(check.passed for check in checks(run))
    total = len(checks(run))
    figure.suptitle(f"{run.machine['date']}: {passed}/{total} targets pass "
                    f"({run.machine['nproc']} CPUs)",
                    color=PASS_COLOR if passed == total else FAIL_COLOR)
    figure.tight_layout()
    figure.savefig(path, dpi=CHART_DPI)
    plt.close(figure)


def write(run: Run, out: Path, command: str, notes: list[str]) -> list[Path]:
    """Write RESULTS.md, results.json and results.png into `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, data, png = out / RESULTS_MD, out / RESULTS_JSON, out / CHART_PNG
    md.write_text(markdown(run, command, notes))
    data.write_text(json.dumps(as_json(run, command), indent=2) + "\n")
    chart(run, png)
    return [md, data, png]
