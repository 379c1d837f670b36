"""Installed size of the runtime requirements against a TensorFlow-based set, in fresh venvs.

    python -m benchmarks.venvsize      # measure (minutes: downloads TensorFlow) and cache

Each set goes into its own new virtual environment under benchmarks/.work/venvs; its size is
`du` of the environment minus an empty one. The figures are cached in benchmarks/.work, keyed
by the requirements' hash, the Python version and the platform, so reruns cost nothing.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.servers import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "functions" / "requirements.txt"
TENSORFLOW_SET = ("tensorflow-cpu", "flask", "pillow", "numpy")
WORK = REPO_ROOT / "benchmarks" / ".work"
CACHE_FILE = WORK / "venv-sizes.json"
INSTALL_TIMEOUT_S = 1800
KB_PER_MB = 1024


@dataclass(frozen=True)
class InstallSizes:
    """MB installed by each set (the environment minus an empty one), and what was installed."""

    runtime_mb: float
    tensorflow_mb: float
    runtime_spec: str
    tensorflow_spec: str
    key: str
    cached: bool = False

    @property
    def ratio(self) -> float:
        return self.runtime_mb / self.tensorflow_mb


def cache_key() -> str:
    """What the sizes depend on: the requirements, the TensorFlow set, Python and platform."""
    digest = hashlib.sha256()
    for part in (REQUIREMENTS.read_bytes(), " ".join(TENSORFLOW_SET).encode(),
                 platform.python_version().encode(), platform.machine().encode()):
        digest.update(part + b"\0")
    return digest.hexdigest()[:16]


def cached_sizes() -> InstallSizes | None:
    """The cached figures for the current key, if any."""
    try:
        data = json.loads(CACHE_FILE.read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != cache_key():
        return None
    return InstallSizes(**{**data, "cached": True})


def du_mb(path: Path) -> float:
    """Disk usage of a folder in MB, as `du -sk` reports it."""
    output = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(output.stdout.split()[0]) / KB_PER_MB


def _venv(path: Path, *pip_args: str) -> float:
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    if pip_args:
        done = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet",
                               "--disable-pip-version-check", *pip_args],
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(pip_args)} failed:\n{done.stderr[-2000:]}")
    return du_mb(path)


def measure(keep: bool = False) -> InstallSizes:
    """Create the three environments, measure them, cache the result; delete them unless `keep`."""
    venvs = WORK / "venvs"
    try:
        empty = _venv(venvs / "empty")
        runtime = _venv(venvs / "runtime", "-r", str(REQUIREMENTS))
        tensorflow = _venv(venvs / "tensorflow", *TENSORFLOW_SET)
    finally:
        if not keep:
            shutil.rmtree(venvs, ignore_errors=True)
    sizes = InstallSizes(
        runtime_mb=round(runtime - empty, 1),
        tensorflow_mb=round(tensorflow - empty, 1),
        runtime_spec=f"pip install -r {REQUIREMENTS.relative_to(REPO_ROOT)}",
        tensorflow_spec="pip install " + " ".join(TENSORFLOW_SET),
        key=cache_key(),
    )
    WORK.mkdir(parents=True, exist_ok=True)
    data = asdict(sizes)
    data.pop("cached")
    CACHE_FILE.write_text(json.dumps(data, indent=2) + "\n")
    return sizes


def install_sizes(allow_measure: bool) -> InstallSizes | None:
    """Cached figures, else measured ones if `allow_measure`, else None."""
    return cached_sizes() or (measure() if allow_measure else None)


def main() -> None:
    sizes = measure(keep="--keep" in sys.argv[1:])
    print(f"runtime {sizes.runtime_mb} MB, tensorflow {sizes.tensorflow_mb} MB, "
          f"ratio {sizes.ratio:.1%}")


if __name__ == "__main__":
    main()
