#!/usr/bin/env bash
# Run Checkov over terraform/ from its own virtual environment.
#
# Checkov pins many of its dependencies exactly; they clash with the dev tools in .venv,
# so it lives in .venv-checkov (git-ignored), created on first use: with uv (a dev tool)
# when there is one, which installs it in about 2 s against pip's 27 s (measured; pip's
# time is mostly compiling the ~200 packages' bytecode), else with pip.
#
# Usage: scripts/checkov.sh [checkov arguments]
#   no arguments: "--quiet" (the compact CLI report of failed checks only);
#   tests/unit/test_checkov.py passes "-o json" (every passed, failed and skipped check).
# Environment:
#   CHECKOV_VENV     where the virtual environment lives (default: <repo>/.venv-checkov)
#   CHECKOV_VERSION  the pinned release (default below); changing it rebuilds the venv
#   PYTHON           the interpreter that creates the venv (default: python3)
#   UV               the uv binary (default: uv on PATH, else <repo>/.venv/bin/uv; none: pip)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
VERSION="${CHECKOV_VERSION:-3.3.30}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.checkov-$VERSION"
UV="${UV-$(command -v uv || { [[ -x "$ROOT/.venv/bin/uv" ]] && echo "$ROOT/.venv/bin/uv"; } || true)}"

if [[ ! -f "$STAMP" ]]; then
  echo "checkov.sh: installing checkov==$VERSION into $VENV" >&2
  rm -rf "$VENV"
  if [[ -n "$UV" ]]; then
    "$UV" venv --quiet --python "$PYTHON" "$VENV" >&2
    "$UV" pip install --quiet --python "$VENV/bin/python" "checkov==$VERSION" >&2
  else
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$VERSION" >&2
  fi
  touch "$STAMP"
fi

if [[ $# -eq 0 ]]; then
  set -- --quiet
fi

cd "$ROOT"
# --skip-download: no policy download from a platform, no network beyond the package registry.
exec "$VENV/bin/checkov" \
  --directory terraform \
  --framework terraform \
  --download-external-modules false \
  --skip-download \
  --compact \
  "$@"
