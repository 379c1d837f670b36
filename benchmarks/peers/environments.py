"""Each peer's own virtual environment under benchmarks/.work, created once, and its size.

    python -m benchmarks.peers.environments      # create (or check) both; print their sizes

A peer's environment is `benchmarks/.work/venv-<peer>`, installed from
`benchmarks/peers/requirements-<peer>.txt`; a stamp file inside it records the requirements'
hash and the installed size (the environment minus an empty one, `du -sk`, as
benchmarks/venvsize.py measures the functions' runtime). A changed requirements file means a
fresh environment. The first install downloads a few hundred MB; later runs reuse it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.venvsize import INSTALL_TIMEOUT_S, WORK, du_mb

PEERS_DIR = Path(__file__).resolve().parent
PEERS = ("bentoml", "litserve")
STAMP = ".peer-installed.json"
EMPTY_VENV_CACHE = WORK / "empty-venv-mb.json"


@dataclass(frozen=True)
class PeerEnvironment:
    """A ready environment: its Python, its installed MB, and what it was installed from."""

    name: str
    python: Path
    installed_mb: float
    spec: str

    @property
    def version(self) -> str:
        """The installed version of the peer's package (from its dist-info folder)."""
        for info in self.python.parent.parent.glob(f"lib/python*/site-packages/{self.name}-*"
                                                   ".dist-info"):
            return info.name.removesuffix(".dist-info").split("-", 1)[1]
        return "?"

    def script(self, name: str) -> Path:
        """A console script of the environment (e.g. `bentoml`)."""
        return self.python.parent / name


def requirements(peer: str) -> Path:
    return PEERS_DIR / f"requirements-{peer}.txt"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes() + sys.version.encode()).hexdigest()[:16]


def empty_venv_mb() -> float:
    """The size of an empty virtual environment (measured once, cached in the work folder)."""
    try:
        return float(json.loads(EMPTY_VENV_CACHE.read_text())["mb"])
    except (OSError, ValueError, KeyError):
        pass
    path = WORK / "venv-empty"
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    size = du_mb(path)
    shutil.rmtree(path, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    EMPTY_VENV_CACHE.write_text(json.dumps({"mb": size}) + "\n")
    return size


def ensure(peer: str, say: Callable[[str], None] = print) -> PeerEnvironment:
    """The peer's environment, created and installed first if missing or out of date."""
    source = requirements(peer)
    path = WORK / f"venv-{peer}"
    python = path / "bin" / "python"
    stamp = path / STAMP
    digest = _digest(source)
    spec = f"pip install -r {source.relative_to(PEERS_DIR.parent.parent)}"
    try:
        recorded = json.loads(stamp.read_text())
        if recorded["digest"] == digest and python.is_file():
            return PeerEnvironment(peer, python, recorded["installed_mb"], spec)
    except (OSError, ValueError, KeyError):
        pass
    say(f"creating {path} ({spec}; once, may take minutes)")
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", "-r", str(source)],
                          capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{spec} failed:\n{done.stderr[-2000:]}")
    installed = round(du_mb(path) - empty_venv_mb(), 1)
    stamp.write_text(json.dumps({"digest": digest, "installed_mb": installed}) + "\n")
    return PeerEnvironment(peer, python, installed, spec)


def main() -> None:
    for peer in PEERS:
        environment = ensure(peer)
        print(f"{peer}: {environment.python} ({environment.installed_mb} MB installed)")


if __name__ == "__main__":
    main()
