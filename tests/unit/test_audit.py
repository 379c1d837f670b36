"""Known vulnerabilities in the runtime requirements: pip-audit over functions/requirements.txt.

pip-audit resolves the requirements (in a temporary virtual environment, through the
configured package index) and asks PyPI's JSON API, per package version, for known
vulnerabilities. Without that API the test skips saying so; it never passes on a partial
audit. An accepted vulnerability goes in IGNORED_VULNS with its reason and is documented in
RELIABILITY.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")
REQUIREMENTS = REPO_ROOT / "functions" / "requirements.txt"
RELIABILITY = REPO_ROOT / "RELIABILITY.md"
# What pip-audit's default service (PyPI) asks for every resolved package.
VERSION_API = "https://pypi.org/pypi/{name}/{version}/json"
PROJECT_API = "https://pypi.org/pypi/{name}/json"
PROBE_PACKAGE = "pip"
TIMEOUT_S = 600
IGNORED_VULNS: dict[str, str] = {}  # vulnerability id -> why it is accepted (RELIABILITY.md)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=20) as response:
        return json.load(response)


def vulnerability_service_problem() -> str | None:
    """Why pip-audit cannot get vulnerability data from here, or None if it can.

    The probe asks for the newest release of PROBE_PACKAGE (from the project page), so a
    404 means the per-version API is missing here, not that the version is.
    """
    try:
        version = _get_json(PROJECT_API.format(name=PROBE_PACKAGE))["info"]["version"]
    except (OSError, ValueError, KeyError) as exc:
        return f"{PROJECT_API.format(name=PROBE_PACKAGE)} is unavailable: {exc}"
    url = VERSION_API.format(name=PROBE_PACKAGE, version=version)
    try:
        body = _get_json(url)
    except urllib.error.HTTPError as exc:
        return (f"{url} answered HTTP {exc.code} although the project page lists {version} "
                "(only part of PyPI's JSON API is reachable)")
    except (OSError, ValueError) as exc:
        return f"{url} is unavailable: {exc}"
    if "vulnerabilities" not in body:
        return f"{url} has no 'vulnerabilities' field"
    return None


def test_runtime_requirements_have_no_known_vulnerabilities(tmp_path: Path) -> None:
    if not PIP_AUDIT.exists():
        pytest.skip(f"pip-audit is not installed in {PIP_AUDIT.parent} (pyproject dev group)")
    problem = vulnerability_service_problem()
    if problem:
        pytest.skip(f"pip-audit's vulnerability service (PyPI's per-version JSON API) is not "
                    f"available here: {problem}")
    report = tmp_path / "audit.json"
    ignores = [arg for vuln in IGNORED_VULNS for arg in ("--ignore-vuln", vuln)]
    result = subprocess.run(
        [str(PIP_AUDIT), "-r", str(REQUIREMENTS), "--format", "json", "--output", str(report),
         "--progress-spinner", "off", *ignores],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert report.exists(), f"pip-audit exited {result.returncode}: {result.stderr[-2000:]}"
    dependencies = json.loads(report.read_text())["dependencies"]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    if skipped:  # a partial audit is no pass
        pytest.skip(f"pip-audit could not audit {len(skipped)} of {len(dependencies)} packages, "
                    f"e.g. {skipped[0]['skip_reason']}")
    found = [f"{d['name']} {d['version']}: {v['id']} (fixed in {v.get('fix_versions')})"
             for d in dependencies for v in d.get("vulns", [])]
    assert found == [], "\n".join(found)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_ignored_vulnerability_is_documented() -> None:
    documented = RELIABILITY.read_text()
    assert [vuln for vuln in IGNORED_VULNS if vuln not in documented] == []
