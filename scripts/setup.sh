#!/usr/bin/env bash
# Create .venv (if missing) and install learnact with its dev extras.
# torch==2.13.0 first: it is a CPU build on local disk; an unpinned torch would
# resolve to a multi-gigabyte build. The package's own range (torch>=2.13,<3) is then met.
# A second call, with pyproject.toml unchanged since the last install, only checks (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
pip_install() {  # quiet pip; its exit status is kept, a local-index notice is filtered out
    .venv/bin/python -m pip install -q --no-compile --disable-pip-version-check "$@" \
        2> >(grep -v "^WARNING: Location" >&2)
}
stamp=.venv/.learnact-installed  # what the last complete install was made from
want="$(.venv/bin/python -c 'import sys; print(sys.version)' | head -n 1) $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c "import learnact, torch" 2>/dev/null; then
    rm -f "$stamp"
    pip_install "torch==2.13.0"
    pip_install -e ".[dev]"
    # --no-compile above, then byte-compiled here on every core: pip compiles one file after another (about
    # 100 s of torch), and where PYTHONDONTWRITEBYTECODE is set nothing would ever write the .pyc files, so
    # every process would compile what it imports again
    # (a file written for a newer Python, such as torch's py312_intrinsics.py, does not compile: pip skips such
    # files too, so compileall's exit status is not an error here)
    .venv/bin/python -m compileall -q -j 0 .venv/lib > /dev/null 2>&1 || true
    echo "$want" > "$stamp"
fi
# learnact's own sources too (the editable install leaves them to the first import, and the tests start
# hundreds of processes); only changed files are compiled again
.venv/bin/python -m compileall -q src/learnact > /dev/null
# build the native training step now (about 15 s, once; cached), not during the first run
.venv/bin/python -c "import learnact, torch
from learnact.training import native
step = 'native step built' if native.load() else 'native step unavailable: the Python step is used'
print(f'learnact ready (torch {torch.__version__}; {step})')"
