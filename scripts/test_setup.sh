#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
if [ -f scripts/ci_system_deps.sh ]; then
  bash scripts/ci_system_deps.sh
fi
