#!/usr/bin/env bash
# Installs modelmix with every extra into .venv and runs every gate CI runs:
# ruff (lint + format), mypy --strict, the pytest suite with coverage, and the strict docs build.
# The first run on a fresh machine compiles llama-cpp-python (~16 minutes on 2 cores; pip caches it).
set -euo pipefail
cd "$(dirname "$0")/.."

# The shared-state tests start a real redis-server on 127.0.0.1 (Debian's package).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server"
  sudo_cmd=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
  $sudo_cmd apt-get update -qq >/dev/null && $sudo_cmd apt-get install -y -qq redis-server >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "== installing modelmix[dev,local,azure] (first run compiles llama-cpp-python)"
.venv/bin/python -m pip install --quiet --progress-bar off -e ".[dev,local,azure]"

paths=(src tests examples benchmarks)
echo "== ruff"
.venv/bin/ruff check "${paths[@]}"
.venv/bin/ruff format --check "${paths[@]}"
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -m "not soak" --cov=modelmix --cov-branch --cov-report=term --cov-report=xml "$@"
echo "== mkdocs build --strict"
site=$(mktemp -d)
.venv/bin/mkdocs build --strict --quiet -d "$site"
rm -rf "$site"
echo "== all gates passed"
