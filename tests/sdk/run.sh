#!/usr/bin/env bash
# SDK compatibility suite: the real `uiform==0.0.35` (and `retab==0.0.49`, processor-scoped
# logs) Python SDKs against a real hookrelay binary, the real `dify-client==0.1.10` driving the
# Dify-compatible Workflow App API (demo app of config.example.toml, built in when the server
# runs without --config), and the real `standardwebhooks==1.1.0` package verifying every
# delivered signature.
#
#   bash tests/sdk/run.sh            # from anywhere; venvs live at the repo root
#   PYTEST_ARGS="-k rerun" bash tests/sdk/run.sh
#   HOOKRELAY_BIN=target/release/hookrelay bash tests/sdk/run.sh   # use a prebuilt binary
#   SDK_VENVS_ONLY=1 bash tests/sdk/run.sh   # only make the venvs (CI, while it compiles)
#
# Creates ./.venv-sdk (uiform, dify-client, standardwebhooks, pytest; dify-client only needs
# `requests`, which uiform already pulls in) and ./.venv-retab (retab 0.0.49 and
# its undeclared imports fastapi + PyYAML; separate because retab conflicts with uiform's
# pins). Builds the binary with `cargo build`, starts it on 127.0.0.1 with a temporary
# database, runs pytest, and stops the server on exit (test_dify_compat.py also starts a
# second relay of its own from the same binary, with a slow app). Exits non-zero when any test
# fails or when no test is collected (a file left empty by a PYTEST_ARGS selection is
# allowed). If retab cannot be installed, only the retab part is skipped (with a message
# saying so).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
SDK_VENV="$ROOT/.venv-sdk"
RETAB_VENV="$ROOT/.venv-retab"
API_KEY="sdk-compat-key-$(date +%s)-$$"

say() { printf '== %s\n' "$*"; }
elapsed() { # start in ns -> "12.3 s"
    local ms=$((($(date +%s%N) - $1) / 1000000))
    printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

# --- 1-2. venvs -----------------------------------------------------------------------------
make_venv() { # dir, packages...
    local dir="$1"
    shift
    if [[ ! -x "$dir/bin/python" ]]; then
        "$PYTHON" -m venv "$dir"
    fi
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

say "pip install into .venv-sdk: uiform==0.0.35 dify-client==0.1.10 standardwebhooks==1.1.0 typing_extensions pytest"
t0=$(date +%s%N)
make_venv "$SDK_VENV" "uiform==0.0.35" "dify-client==0.1.10" "standardwebhooks==1.1.0" typing_extensions pytest
say "pip install (.venv-sdk) took $(elapsed "$t0")"

RETAB_OK=1
say "pip install into .venv-retab: retab==0.0.49 fastapi PyYAML standardwebhooks==1.1.0 typing_extensions pytest"
t0=$(date +%s%N)
if ! make_venv "$RETAB_VENV" "retab==0.0.49" fastapi PyYAML "standardwebhooks==1.1.0" \
    typing_extensions pytest; then
    RETAB_OK=0
elif ! "$RETAB_VENV/bin/python" -c 'import sys, typing, typing_extensions
if sys.version_info < (3, 12): typing.TypedDict = typing_extensions.TypedDict
import retab'; then
    RETAB_OK=0
fi
say "pip install (.venv-retab) took $(elapsed "$t0")"
if [[ $RETAB_OK == 0 ]]; then
    echo "!! SKIPPING the retab 0.0.49 part: retab==0.0.49 could not be installed/imported here." >&2
    echo "!! The uiform part still runs; the processor-scoped family is NOT verified by this run." >&2
fi

if [[ -n "${SDK_VENVS_ONLY:-}" ]]; then
    exit 0
fi

# --- 3. binary and server -------------------------------------------------------------------
if [[ -n "${HOOKRELAY_BIN:-}" ]]; then
    BIN="$HOOKRELAY_BIN" # a prebuilt binary; no build
else
    say "cargo build"
    cargo build --quiet --bin hookrelay
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/hookrelay"
fi
[[ -x "$BIN" ]] || { echo "no binary at $BIN" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" # absolute: servers start in other dirs

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true # SIGTERM: graceful stop
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting hookrelay (database in $WORK)"
(
    cd "$WORK"
    exec env HOOKRELAY_DATABASE="$WORK/hookrelay.db" \
        HOOKRELAY_API_KEYS="$API_KEY" \
        HOOKRELAY_ALLOW_PRIVATE_TARGETS=true \
        HOOKRELAY_LISTEN=127.0.0.1:0 \
        RUST_LOG="${RUST_LOG:-warn}" \
        "$BIN" serve >"$WORK/stdout.log" 2>"$WORK/stderr.log"
) &
SERVER_PID=$!

BASE_URL=""
for _ in $(seq 1 200); do
    BASE_URL="$(sed -n 's/^hookrelay listening on \(http:\/\/[^ ]*\).*$/\1/p' "$WORK/stdout.log" | head -n1)"
    [[ -n "$BASE_URL" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "hookrelay exited before listening:" >&2
        cat "$WORK/stdout.log" "$WORK/stderr.log" >&2
        exit 1
    fi
    sleep 0.1
done
[[ -n "$BASE_URL" ]] || { echo "hookrelay did not print its address" >&2; cat "$WORK/stderr.log" >&2; exit 1; }
say "hookrelay at $BASE_URL"

# --- 4. tests -------------------------------------------------------------------------------
# HOOKRELAY_BIN: test_dify_compat.py starts a second relay of its own (a slow app, for stopped
# and timed-out runs) from the same binary.
export HOOKRELAY_BASE_URL="$BASE_URL" HOOKRELAY_API_KEY="$API_KEY" HOOKRELAY_BIN="$BIN"
# The SDKs pick up these from the environment; make sure a developer's real keys never leak in.
unset OPENAI_API_KEY GEMINI_API_KEY XAI_API_KEY UIFORM_API_KEY UIFORM_API_BASE_URL \
    RETAB_API_KEY RETAB_API_BASE_URL 2>/dev/null || true

status=0
run_pytest() { # venv, test file
    local venv="$1" file="$2" rc=0
    say "pytest $file ($("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
    # Exit code 5 (no tests collected) is non-zero too, so an empty run fails; only a
    # selection narrowed by PYTEST_ARGS (e.g. -k rerun) may leave a file with none.
    "$venv/bin/python" -m pytest -p no:cacheprovider -q -rfEsxXp ${PYTEST_ARGS:-} "tests/sdk/$file" || rc=$?
    if [[ $rc == 5 && -n "${PYTEST_ARGS:-}" ]]; then
        echo "== $file: nothing selected by PYTEST_ARGS=${PYTEST_ARGS}" >&2
    elif [[ $rc != 0 ]]; then
        echo "!! $file failed (pytest exit $rc)" >&2
        status=1
    fi
}
run_pytest "$SDK_VENV" test_uiform_compat.py
run_pytest "$SDK_VENV" test_dify_compat.py
if [[ $RETAB_OK == 1 ]]; then
    run_pytest "$RETAB_VENV" test_retab_compat.py
else
    echo "!! test_retab_compat.py SKIPPED: retab 0.0.49 is not installable here" >&2
fi

if [[ $status != 0 ]]; then
    echo "== server stderr (last 50 lines)" >&2
    tail -n 50 "$WORK/stderr.log" >&2 || true
    say "SDK compatibility: FAILED"
else
    say "SDK compatibility: passed"
fi
exit $status
