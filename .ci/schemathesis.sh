#!/usr/bin/env bash
# Schemathesis (property-based requests generated from /openapi.json) against a live relay:
# every answer must be no 5xx, of a documented status and content type, and valid against
# its documented schema (the checks: CHECKS below). Run by .ci/run; by hand:
# `bash .ci/schemathesis.sh` (it builds the debug binary when HOOKRELAY_BIN is not given).
# SCHEMATHESIS_EXAMPLES (25 an operation), SCHEMATHESIS_SEED and SCHEMATHESIS_CHECKS
# override the defaults; SCHEMATHESIS_ARGS adds options. Not checked:
# positive_data_acceptance, as some refusals depend on state or on two parameters together,
# which OpenAPI cannot express (`before` with `after`, an `expires_at` already past, an
# app's own input form); the document says them in words. The relay is seeded first
# (.ci/schemathesis_seed.py) so that the routes of one thing are called with ids that exist.
#
# The relay and schemathesis run in a network namespace of their own with only loopback up:
# the automations schemathesis creates get webhook URLs of any host, and the relay tries to
# deliver the messages it ingests; in the namespace those calls fail at once, never leaving
# the machine. Two runs: the API key routes with an admin key, then the workflow app routes
# (which refuse an API key) with the demo app's key of config.example.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-25}"
SEED="${SCHEMATHESIS_SEED:-14}"
# No 5xx; every answer of a documented status, content type, headers and schema; a route
# refuses a request without its key (ignored_auth, missing_required_header), a method it
# does not serve (405), and forgets what was deleted (use_after_free); what was created
# can be read back (ensure_resource_availability).
CHECKS="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth,missing_required_header,unsupported_method,use_after_free,ensure_resource_availability}"
ADMIN_KEY="schemathesis-admin-key-0123456789"
APP_KEY="app-demo-key-0123456789"
APP_ROUTES='^/v1/(workflows/|parameters$|files/)'

echo "== pip install into .venv-schemathesis: schemathesis==$SCHEMATHESIS_VERSION"
if [ ! -x .venv-schemathesis/bin/python ]; then python3 -m venv .venv-schemathesis; fi
.venv-schemathesis/bin/python -m pip install --quiet --disable-pip-version-check \
  "schemathesis==$SCHEMATHESIS_VERSION"

# SCHEMATHESIS_VENV_ONLY=1: only make the venv (CI does while it compiles).
if [ -n "${SCHEMATHESIS_VENV_ONLY:-}" ]; then exit 0; fi

bin="${HOOKRELAY_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --bin hookrelay
  bin=target/debug/hookrelay
fi
bin="$(realpath "$bin")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Inside the namespace: loopback up, the relay on a free port, then the two runs.
inner() {
  python3 - <<'PY'
import fcntl, socket, struct
# SIOCSIFFLAGS on `lo`: IFF_UP | IFF_LOOPBACK | IFF_RUNNING (no `ip` needed).
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", 0x1 | 0x8 | 0x40))
PY
  HOOKRELAY_LISTEN=127.0.0.1:0 HOOKRELAY_DATABASE="$work/hookrelay.db" \
    HOOKRELAY_API_KEYS="$ADMIN_KEY" RUST_LOG=error \
    "$bin" serve --config config.example.toml >"$work/stdout" 2>"$work/stderr" &
  local relay=$!
  local base=""
  for _ in $(seq 1 200); do
    base="$(sed -n 's/^hookrelay listening on //p' "$work/stdout")"
    [ -n "$base" ] && break
    sleep 0.1
  done
  if [ -z "$base" ]; then
    echo "the relay did not start:" >&2
    cat "$work/stderr" >&2
    kill "$relay" 2>/dev/null || true
    return 1
  fi
  # One worker: with two, threads describing Hypothesis strategies at once trip a CPython 3.11
  # `ast.parse` race ("AST constructor recursion depth mismatch"), a runtime error at random.
  local common=(--checks "$CHECKS"
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --no-shrink
    --request-timeout 20 --output-truncate false --warnings off)
  # Extra options by hand, e.g. SCHEMATHESIS_ARGS="--report har --report-dir /tmp/st".
  read -r -a extra <<<"${SCHEMATHESIS_ARGS:-}"
  common+=("${extra[@]}")
  # Things that exist, so that the routes of one thing answer more than 404.
  python3 .ci/schemathesis_seed.py "$base" "$ADMIN_KEY" "$APP_KEY" >"$work/schemathesis.toml"
  local st=(.venv-schemathesis/bin/schemathesis --config-file "$work/schemathesis.toml")
  local rc=0
  echo "== schemathesis: API key routes (admin key), $EXAMPLES examples an operation"
  "${st[@]}" run "$base/openapi.json" "${common[@]}" -H "Api-Key: $ADMIN_KEY" \
    --exclude-path-regex "$APP_ROUTES" || rc=1
  echo "== schemathesis: workflow app routes (app key), $EXAMPLES examples an operation"
  "${st[@]}" run "$base/openapi.json" "${common[@]}" -H "Authorization: Bearer $APP_KEY" \
    --include-path-regex "$APP_ROUTES" || rc=1
  kill "$relay"
  wait "$relay" || true
  if grep -q panicked "$work/stderr"; then
    echo "the relay panicked:" >&2
    grep -A5 panicked "$work/stderr" >&2
    rc=1
  fi
  return "$rc"
}

export -f inner
export work bin ADMIN_KEY APP_KEY APP_ROUTES EXAMPLES SEED CHECKS SCHEMATHESIS_ARGS
map_root=()
if [ "$(id -u)" -ne 0 ]; then map_root=(--map-root-user); fi
start=$(date +%s)
unshare --net "${map_root[@]}" bash -c inner
echo "== schemathesis passed in $(($(date +%s) - start)) s"
