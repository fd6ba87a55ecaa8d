#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
bash scripts/system_deps.sh
