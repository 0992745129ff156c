#!/usr/bin/env bash
# Static checks, run by .ci/run before the tests: ruff (lint + import order) on src/ and tests/, mypy on src/,
# both configured in pyproject.toml. Exits non-zero on any finding.
# PYTHON selects the interpreter that has ruff and mypy (default: .venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
status=0
echo "lint: ruff check src tests"
"$PY" -m ruff check src tests || status=1
echo "lint: mypy (src/learnact)"
"$PY" -m mypy || status=1
exit $status
