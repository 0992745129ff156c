#!/usr/bin/env bash
# Install learnact as a user does -- `pip install .`, no extras -- into clean venvs, and check that it works:
#   newest: what pip picks today within pyproject.toml's ranges,
#   oldest: every dependency at its lower bound (.ci/constraints-oldest.txt).
# In each: `learnact --version`, a usage error (`learnact run --bogus`: exit 2, one line naming the help, no
# traceback) and a tiny study end to end (`learnact run STUDY.toml --out d`, then compare and predict). At the
# oldest versions the console-script tests (usage errors, signals, OS errors: tests/cli/test_entry.py), the config
# tests, the figure-file tests (tests/reporting/test_figure_bounds.py: each figure's PNG and PDF against
# matplotlib's own drawing) and the statistics tests (tests/evaluation/test_statistics.py: the paired tests'
# p-values, the same on every scipy release) run too (pytest is installed on its own, not through an
# extra); the whole tests/cli there took 5 min.
# torch is installed first at 2.13.0 in both: the CPU build on local disk (a newer torch would pull
# gigabytes of CUDA libraries); the rest of "newest" is the newest pip finds.
#
# Usage: bash scripts/check_installs.sh [newest] [oldest]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
CONSTRAINTS=$ROOT/.ci/constraints-oldest.txt
TORCH=torch==2.13.0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/learnact-installs.XXXXXX")
chmod 755 "$WORK"  # other users may read it (the permission test runs learnact as nobody)
trap 'rm -rf "$WORK"' EXIT
# PYTHONDONTWRITEBYTECODE too: with --no-compile below, a process that may not write the .pyc files it compiles
# compiles torch's sources again in every process (5 s each; the oldest-version tests took 138 s instead of 73 s)
unset PYTHONPATH LEARNACT_DEBUG PYTHONDONTWRITEBYTECODE
KINDS=("$@")
[ ${#KINDS[@]} -gt 0 ] || KINDS=(newest oldest)

say() { printf 'check_installs: %s\n' "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }
elapsed() { echo "$((SECONDS - $1)) s"; }

# The constraints pin exactly the lower bounds of pyproject.toml (one list of bounds, checked here).
"$PY" - "$ROOT/pyproject.toml" "$CONSTRAINTS" <<'EOF' || fail "the constraints file and pyproject.toml disagree"
import re, sys, tomllib

def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
def ver(v): return tuple(int(p) for p in v.split(".")) + (0,) * (4 - len(v.split(".")))

deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
lower = {}
for dep in deps:
    m = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", dep)
    bound = re.search(r">=\s*([0-9.]+)", m.group(2))
    if bound is None:
        sys.exit(f"{dep!r} has no lower bound")
    lower[norm(m.group(1))] = bound.group(1)
pins = {}
for line in open(sys.argv[2]):
    line = line.split("#")[0].strip()
    if line:
        name, _, version = line.partition("==")
        pins[norm(name)] = version.strip()
bad = [f"{n}: pyproject >={lower.get(n)}, constraints =={pins.get(n)}" for n in sorted(set(lower) | set(pins))
       if n not in lower or n not in pins or ver(lower[n]) != ver(pins[n])]
if bad:
    sys.exit("; ".join(bad))
EOF

# what `pip install .` of a fresh clone sees (no build/ or egg-info left in the work tree); one copy per
# install: both run at once, and setuptools builds in the source tree (build/, src/*.egg-info), so a shared
# copy once failed with "File exists: build/bdist.linux-x86_64/wheel/learnact-0.1.0.dist-info"
for kind in "${KINDS[@]}"; do
    mkdir "$WORK/pkg-$kind"
    cp -r pyproject.toml README.md src "$WORK/pkg-$kind/"
    find "$WORK/pkg-$kind" -name __pycache__ -prune -exec rm -rf {} +
done

# --no-compile: byte-compiling torch's thousands of files took 100 s of a 40 s install; Python compiles
# what it imports, once (bytecode writing is on: see PYTHONDONTWRITEBYTECODE above)
pip_in() {  # pip_in VENV ARGS...: quiet pip; a local-index notice is filtered out, the exit status kept
    local venv=$1
    shift
    "$venv/bin/python" -m pip install -q --no-compile --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

TINY='name = "tiny"
seeds = [1, 2]
[backbone]
hidden = [8]
[train]
max_epochs = 3
[[variants]]
name = "relu"
kind = "fixed"
activation = "relu"
[[variants]]
name = "gated"
kind = "gated"
candidates = ["relu", "tanh"]
'

smoke() {  # smoke VENV: the console script as a user calls it, from a folder of its own
    local bin=$1/bin dir=$1-try out rc
    mkdir "$dir"
    out=$(cd "$dir" && "$bin/learnact" --version) || fail "learnact --version exited $?"
    [[ $out == "learnact "* ]] || fail "learnact --version printed: $out"
    say "  $out"
    set +e
    out=$(cd "$dir" && "$bin/learnact" run --bogus 2>&1)
    rc=$?
    set -e
    [ "$rc" -eq 2 ] || fail "learnact run --bogus exited $rc, not 2: $out"
    [[ $out == "learnact: error: No such option: --bogus"*"; see 'learnact run --help'" ]] \
        || fail "learnact run --bogus printed no one-line usage error: $out"
    [[ $out != *$'\n'* ]] || fail "learnact run --bogus printed more than one line: $out"
    [[ $out != *Traceback* ]] || fail "learnact run --bogus printed a traceback: $out"
    say "  learnact run --bogus: exit 2, one line ($out), no traceback"
    printf '%s' "$TINY" > "$dir/STUDY.toml"
    (cd "$dir" && "$bin/learnact" run STUDY.toml --out d) > "$dir/run.txt" 2>&1 \
        || { cat "$dir/run.txt" >&2; fail "learnact run STUDY.toml --out d failed"; }
    ! grep -q Traceback "$dir/run.txt" || { cat "$dir/run.txt" >&2; fail "learnact run printed a traceback"; }
    for f in leaderboard.csv results.csv report/index.md report/report.tex; do
        [ -s "$dir/d/$f" ] || fail "learnact run STUDY.toml --out d wrote no $f"
    done
    [ "$(find "$dir/d/runs" -mindepth 2 -maxdepth 2 -name DONE | wc -l)" -eq 4 ] || fail "not 4 finished runs"
    (cd "$dir" && "$bin/learnact" compare d > compare.txt 2>&1) || { cat "$dir/compare.txt" >&2; fail "compare"; }
    local run
    run=$(find "$dir/d/runs" -mindepth 1 -maxdepth 1 -type d | sort | head -n 1)
    (cd "$dir" && "$bin/learnact" predict "$run" breast_cancer --out preds.csv > predict.txt 2>&1) \
        || { cat "$dir/predict.txt" >&2; fail "predict"; }
    [ "$(wc -l < "$dir/preds.csv")" -eq 570 ] || fail "predict wrote $(wc -l < "$dir/preds.csv") lines, not 570"
    say "  learnact run STUDY.toml --out d (4 runs, report), compare d, predict: fine"
}

install() {  # install KIND: a clean venv at $WORK/KIND with learnact and, for "oldest", pytest
    local kind=$1 venv=$WORK/$1
    "$PY" -m venv "$venv"
    case $kind in
        newest)
            pip_in "$venv" "$TORCH"
            pip_in "$venv" "$WORK/pkg-$kind"
            ;;
        oldest)
            pip_in "$venv" -c "$CONSTRAINTS" "$TORCH"
            pip_in "$venv" -c "$CONSTRAINTS" "$WORK/pkg-$kind"
            pip_in "$venv" -c "$CONSTRAINTS" pytest pytest-xdist hypothesis sympy  # for the tests, on their own (no extra)
            # exactly the pinned versions, or the "oldest" check checks something else
            "$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | "$PY" -c '
import re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
have = {norm(n): v.split("+")[0] for n, _, v in (l.strip().partition("==") for l in sys.stdin) if v}
pins = {norm(n): v.strip() for n, _, v in (l.split("#")[0].strip().partition("==") for l in open(sys.argv[1])) if v}
bad = [f"{n} {have.get(n)} (pinned {v})" for n, v in pins.items() if have.get(n) != v]
sys.exit("not at the pinned versions: " + ", ".join(bad) if bad else 0)' "$CONSTRAINTS"
            ;;
        *) fail "unknown kind $kind (use newest or oldest)" ;;
    esac
}

# the installs run side by side (mostly unpacking and waiting for the disk), and so do the checks: most of
# their time is process start-up and waiting on the console script
start=$SECONDS
pids=()
for kind in "${KINDS[@]}"; do
    install "$kind" > "$WORK/install-$kind.log" 2>&1 &
    pids+=($!)
done
for i in "${!KINDS[@]}"; do
    if ! wait "${pids[$i]}"; then
        cat "$WORK/install-${KINDS[$i]}.log" >&2
        fail "installing ${KINDS[$i]}"
    fi
done
say "installed ${KINDS[*]} in $(elapsed "$start")"

check() {  # check KIND: the checks of one install (their output goes to a log, printed below)
    local kind=$1 start=$SECONDS venv=$WORK/$1
    say "$kind: $("$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
        | awk 'tolower($1) ~ /^(torch|numpy|scipy|pandas|scikit-learn|matplotlib|pypdfium2|typer|click|rich|pydantic|annotated-types|pyyaml|safetensors)$/ {printf "%s %s, ", $1, $2}')"
    if "$venv/bin/python" -c "import click" 2>/dev/null; then
        say "  (click is installed here, by typer: learnact itself does not import it)"
    fi
    smoke "$venv"
    if [ "$kind" = oldest ]; then
        # from the work tree, against the installed package (src/ is not on the path)
        # and the figure files against matplotlib's own drawing (3.7.0-3.7.1 garbled the confusion matrices' PDF),
        # and the paired tests' p-values against scipy's permutation test (scipy 1.10-1.12's wilcoxon approximated)
        "$venv/bin/python" -m pytest -q -n auto -p no:cacheprovider tests/cli/test_entry.py tests/test_config.py \
            tests/reporting/test_figure_bounds.py tests/evaluation/test_statistics.py \
            || fail "the console-script, config, figure and statistics tests failed at the oldest versions (exit $?)"
    fi
    say "$kind: all checks passed in $(elapsed "$start")"
}

pids=()
for kind in "${KINDS[@]}"; do
    check "$kind" > "$WORK/check-$kind.log" 2>&1 &
    pids+=($!)
done
failed=()
for i in "${!KINDS[@]}"; do
    wait "${pids[$i]}" || failed+=("${KINDS[$i]}")
    cat "$WORK/check-${KINDS[$i]}.log"
done
[ ${#failed[@]} -eq 0 ] || fail "the checks of ${failed[*]} failed (their output is above)"
