#!/usr/bin/env bash
# Create .venv (if missing) and install learnact with its dev extras.
# torch==2.13.0 first: it is a CPU build on local disk; an unpinned torch would
# resolve to a multi-gigabyte build. The package's own range (torch>=2.13,<3) is then met.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
pip_install() {  # quiet pip; its exit status is kept, a local-index notice is filtered out
    .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2)
}
pip_install "torch==2.13.0"
pip_install -e ".[dev]"
# byte-compile learnact's own sources (the editable install leaves them to the first import): where
# PYTHONDONTWRITEBYTECODE is set, every process would compile them again, and the tests start hundreds
.venv/bin/python -m compileall -q src/learnact > /dev/null
# build the native training step now (about 15 s, once; cached), not during the first run
.venv/bin/python -c "import learnact, torch
from learnact.training import native
step = 'native step built' if native.load() else 'native step unavailable: the Python step is used'
print(f'learnact ready (torch {torch.__version__}; {step})')"
