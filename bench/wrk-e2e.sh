#!/usr/bin/env bash
# End-to-end throughput of hookrelay measured with tools we did not write: wrk posts unique
# ~1 KB messages to POST /v1/messages for DURATION seconds, and hookrelay delivers each one to
# an nginx that answers 200; then the script waits until nginx has logged every accepted
# message and prints one summary. See bench/README.md.
#
# Environment:
#   HOOKRELAY_BIN  relay binary (default target/release/hookrelay; built with
#                  `cargo build --release` when missing)
#   DURATION       seconds wrk posts for (20)
#   CONNECTIONS    wrk connections (32); THREADS wrk threads (2)
#   SAME_PAYLOAD   1: post one identical payload every time instead of unique ones
#   SYNCHRONOUS    normal | full: [store] synchronous of the relay (normal)
#   KEEP           1: keep the run's temporary directory (configs, logs, database)
set -euo pipefail

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
SAME_PAYLOAD=${SAME_PAYLOAD:-0}
SYNCHRONOUS=${SYNCHRONOUS:-normal}
KEEP=${KEEP:-0}
API_KEY=wrk-e2e-admin-key-0123456789
DRAIN_TIMEOUT_SECS=600

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOOKRELAY_BIN=${HOOKRELAY_BIN:-$repo/target/release/hookrelay}

die() {
  echo "wrk-e2e: $*" >&2
  exit 1
}

case $SYNCHRONOUS in normal | full) ;; *) die "SYNCHRONOUS must be normal or full" ;; esac
case $SAME_PAYLOAD in 0 | 1) ;; *) die "SAME_PAYLOAD must be 0 or 1" ;; esac
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive number"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive number"

# --- tools -----------------------------------------------------------------------------------
install_packages() {
  if [[ $(id -u) -eq 0 ]]; then
    apt-get install -y "$@" || { apt-get update && apt-get install -y "$@"; }
  elif command -v sudo >/dev/null; then
    sudo apt-get install -y "$@" || { sudo apt-get update && sudo apt-get install -y "$@"; }
  else
    die "install $* (apt-get install -y $*), then run again"
  fi
}
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  echo "wrk-e2e: installing ${missing[*]}" >&2
  install_packages "${missing[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ ! -x $HOOKRELAY_BIN ]]; then
  echo "wrk-e2e: $HOOKRELAY_BIN missing, building it" >&2
  (cd "$repo" && cargo build --release --bin hookrelay) >&2
fi

# --- processes, cleaned up on exit ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/hookrelay-wrk-e2e.XXXXXX")
relay_pid=
nginx_pid=
wrk_pid=
cleanup() {
  local pid
  for pid in $wrk_pid $relay_pid $nginx_pid; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $wrk_pid $relay_pid $nginx_pid; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $KEEP == 1 ]]; then
    echo "wrk-e2e: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port on 127.0.0.1 nothing listens on now (nginx needs a port before it starts).
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat")
  stat=${stat##*) }
  # After the command name: state is field 3, utime 14 and stime 15 of the whole line.
  awk '{print $12 + $13}' <<<"$stat"
}
ticks_per_sec=$(getconf CLK_TCK)

# --- receiver: nginx, unprivileged, private config --------------------------------------------
nginx_port=$(free_port)
mkdir -p "$work/nginx"
# One process (no master, no user switch), so it runs as whoever runs this script and its CPU
# is one /proc entry. The access log line per delivery: arrival time (ms), status, webhook-id.
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  log_format delivery '\$msec \$status \$http_webhook_id';
  access_log $work/nginx/access.log delivery;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /hook { return 200 'ok'; }
    location / { return 404; }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
nginx_pid=$!

# --- relay: config.example.toml with loopback, a temp database, a key, private targets ------
config=$work/hookrelay.toml
sed -e 's|^listen = "127.0.0.1:8080"|listen = "127.0.0.1:0"|' \
  -e "s|^database = \"./hookrelay.db\"|database = \"$work/hookrelay.db\"|" \
  -e "s|^api_keys = \[\]|api_keys = [\"$API_KEY\"]|" \
  -e 's|^allow_private_targets = false|allow_private_targets = true|' \
  -e "s|^synchronous = \"normal\"|synchronous = \"$SYNCHRONOUS\"|" \
  "$repo/config.example.toml" >"$config"
for key in 'listen = "127.0.0.1:0"' "database = \"$work/hookrelay.db\"" "api_keys = \[\"$API_KEY\"\]" \
  'allow_private_targets = true' "synchronous = \"$SYNCHRONOUS\""; do
  grep -q "^$key" "$config" || die "config.example.toml changed: cannot set $key"
done
# Created here: the background command opens its redirections only once it has forked.
: >"$work/relay.out"
RUST_LOG=warn "$HOOKRELAY_BIN" serve --config "$config" >"$work/relay.out" 2>"$work/relay.err" &
relay_pid=$!

base=
for _ in $(seq 200); do
  base=$(sed -n 's/^hookrelay listening on //p' "$work/relay.out" | head -n1)
  [[ -n $base ]] && break
  kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.err" >&2; die "relay exited"; }
  sleep 0.05
done
[[ -n $base ]] || die "relay did not start (see $work/relay.err)"
for _ in $(seq 100); do
  curl -fs -o /dev/null "http://127.0.0.1:$nginx_port/hook" -X POST && break
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$work/nginx/error.log" >&2; die "nginx exited"; }
  sleep 0.05
done
curl -fs -o /dev/null "http://127.0.0.1:$nginx_port/hook" -X POST || die "nginx does not answer"
: >"$work/nginx/access.log"

curl -fsS -o "$work/automation.json" "$base/v1/processors/automations/endpoints" \
  -H "Api-Key: $API_KEY" -H 'Content-Type: application/json' \
  -d "{\"name\":\"wrk-e2e\",\"processor_id\":\"proc_bench\",\"webhook_url\":\"http://127.0.0.1:$nginx_port/hook\"}" ||
  die "cannot create the automation"

# The relay's own count of messages answered 202.
accepted_by_relay() {
  curl -fsS "$base/metrics" | awk '/^hookrelay_messages_accepted(_total)? /{print $2; exit}'
}
# Whether any delivery is still pending (its log not yet committed).
any_pending() {
  curl -fsS "$base/v1/deliveries?status=pending&limit=1" -H "Api-Key: $API_KEY" | grep -q '"data":\[{'
}
# Distinct messages nginx answered 200 (by webhook-id, so a duplicate call counts once).
delivered() {
  awk '$2 == 200 {print $3}' "$work/nginx/access.log" | sort -u | wc -l
}

# --- load -------------------------------------------------------------------------------------
relay_cpu0=$(cpu_ticks "$relay_pid")
nginx_cpu0=$(cpu_ticks "$nginx_pid")
echo "wrk-e2e: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $( ((SAME_PAYLOAD)) && echo 'same payload' || echo 'unique payloads'), synchronous=$SYNCHRONOUS" >&2
start=$(date +%s.%N)
API_KEY=$API_KEY SAME_PAYLOAD=$SAME_PAYLOAD wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
  --latency -s "$repo/bench/unique-messages.lua" "$base/v1/messages" >"$work/wrk.out" &
# Waited for in the background, so that INT or TERM stops the run at once (bash runs a trap
# only once the foreground command is done).
wrk_pid=$!
wait "$wrk_pid" || die "wrk failed: $(cat "$work/wrk.out")"
wrk_pid=

# Drained: nginx has every message the relay counted, no delivery is pending, and that held
# for 3 rounds with no new delivery. The rounds matter: a request wrk abandoned when it stopped
# may still commit after (with no answer, so the relay's counter misses it; it is delivered).
deadline=$(($(date +%s) + DRAIN_TIMEOUT_SECS))
settled=0
seen=-1
while ((settled < 3)); do
  (($(date +%s) < deadline)) || die "only $(delivered) of ${accepted:-?} delivered after ${DRAIN_TIMEOUT_SECS}s"
  sleep 0.2
  accepted=$(accepted_by_relay)
  now=$(delivered)
  if ((now >= accepted && now == seen)) && ! any_pending; then
    settled=$((settled + 1))
  else
    settled=0
  fi
  seen=$now
done
[[ -n ${accepted:-} ]] || die "cannot read hookrelay_messages_accepted from $base/metrics"
relay_cpu=$(($(cpu_ticks "$relay_pid") - relay_cpu0))
nginx_cpu=$(($(cpu_ticks "$nginx_pid") - nginx_cpu0))

# --- summary ----------------------------------------------------------------------------------
wrk_value() { awk -v k="$1" '$1 == "WRK" && $2 == k {print $3}' "$work/wrk.out"; }
requests=$(wrk_value requests)
duration_us=$(wrk_value duration_us)
status_errors=$(awk '$1 == "WRK" && $2 == "errors" {sub("status=", "", $6); print $6}' "$work/wrk.out")
errors_line=$(awk '$1 == "WRK" && $2 == "errors" {print $3, $4, $5, $6, $7}' "$work/wrk.out")
ok_2xx=$((requests - status_errors))
n_delivered=$(wc -l <"$work/nginx/access.log")
distinct=$(delivered)
non_200=$(awk '$2 != 200' "$work/nginx/access.log" | wc -l)
last=$(awk 'BEGIN {m = 0} $1 > m {m = $1} END {printf "%.3f", m}' "$work/nginx/access.log")
db_bytes=0
for f in "$work/hookrelay.db" "$work/hookrelay.db-wal"; do
  [[ -f $f ]] && db_bytes=$((db_bytes + $(stat -c %s "$f")))
done

echo
echo "hookrelay e2e with wrk + nginx ($(basename "$HOOKRELAY_BIN"): $HOOKRELAY_BIN)"
echo "workload: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s POST /v1/messages, $( ((SAME_PAYLOAD)) && echo 'the same 1 KB payload every time' || echo 'a unique 1 KB payload per message'), one automation -> nginx; synchronous=$SYNCHRONOUS"
awk -v req="$requests" -v us="$duration_us" -v ok="$ok_2xx" -v acc="$accepted" '
  BEGIN { printf "accepted (wrk)           %d requests, %d answered 2xx: %.0f msg/s over %.1f s (the relay counted %d answered 202)\n", req, ok, ok / (us / 1e6), us / 1e6, acc }'
echo "wrk errors               $errors_line"
awk -v n="$n_delivered" -v d="$distinct" -v bad="$non_200" -v start="$start" -v last="$last" '
  BEGIN { printf "delivered (nginx)        %d calls, %d distinct webhook-ids, %d not 200; last %.1f s after wrk started\n", n, d, bad, last - start
          printf "deliveries/s end-to-end  %.0f (distinct deliveries / time from wrk start to the last delivery)\n", d / (last - start) }'
awk -v t="$relay_cpu" -v hz="$ticks_per_sec" -v d="$distinct" '
  BEGIN { printf "relay CPU                %.2f s, %.1f us per delivered message\n", t / hz, t / hz * 1e6 / d }'
awk -v t="$nginx_cpu" -v hz="$ticks_per_sec" -v d="$distinct" '
  BEGIN { printf "nginx CPU                %.2f s, %.1f us per delivered message\n", t / hz, t / hz * 1e6 / d }'
awk -v b="$db_bytes" -v d="$distinct" '
  BEGIN { printf "database (file + WAL)    %d bytes, %.0f bytes per delivered message\n", b, b / d }'
if command -v sqlite3 >/dev/null; then
  messages=$(sqlite3 -readonly "$work/hookrelay.db" 'SELECT count(*) FROM messages' 2>/dev/null || echo '?')
  echo "messages stored          $messages (with any wrk abandoned at its end; each is delivered)"
  if stored=$(sqlite3 -readonly "$work/hookrelay.db" 'SELECT sum(pgsize) FROM dbstat' 2>/dev/null); then
    awk -v b="$stored" -v d="$distinct" '
      BEGIN { printf "database pages (dbstat)  %d bytes, %.0f bytes per delivered message\n", b, b / d }'
  fi
fi
echo "wrk latency (POST /v1/messages answered):"
awk '$1 == "WRK" && $2 ~ /^latency_/ {sub("latency_", "", $2); sub("_ms", "", $2); printf "  %-6s %s ms\n", $2, $3}' "$work/wrk.out"
