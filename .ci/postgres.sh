#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests (issue 15): Debian's PostgreSQL, installed if
# missing, a cluster of its own in a temp dir, listening on a free port of 127.0.0.1 only,
# password authentication (SCRAM) over TCP, and one database, hookrelay_test.
#
#   source .ci/postgres.sh            # start (or reuse) it, export HOOKRELAY_TEST_DATABASE,
#                                     # and stop it when the sourcing shell exits (if it
#                                     # started it)
#   bash .ci/postgres.sh start        # start (or reuse) it, print `export HOOKRELAY_TEST_DATABASE=…`
#   bash .ci/postgres.sh stop         # stop it and remove its directory
#   bash .ci/postgres.sh install      # only install Debian's PostgreSQL if missing
#   bash .ci/postgres.sh run -- CMD…  # start (or reuse) it, run CMD with the variable set,
#                                     # stop it (if it started it)
#
# Idempotent: a cluster already running in the directory is reused (same URL); one found
# stopped is removed and made anew. The directory is $HOOKRELAY_PG_DIR, by default
# ${TMPDIR:-/tmp}/hookrelay-pg-<uid>. As root, the cluster runs as the `postgres` user
# (initdb refuses root); otherwise as the current user. No system-wide cluster is created or
# touched (no pg_createcluster, no service).

pg_dir="${HOOKRELAY_PG_DIR:-${TMPDIR:-/tmp}/hookrelay-pg-$(id -u)}"
pg_db=hookrelay_test

pg_log() { echo "postgres.sh: $*" >&2; }

# Installs Debian's PostgreSQL server when no initdb is found, without the `main` cluster
# the package would otherwise create and start system-wide.
pg_install() {
    if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
        return 0
    fi
    pg_log "installing Debian's postgresql"
    mkdir -p /etc/postgresql-common
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
    fi
    apt-get update -qq >&2 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2 ||
        return 1
}

# The newest installed server's bin directory.
pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# Runs a server binary as the cluster's owner.
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_url() {
    echo "postgres://postgres:$(cat "$pg_dir/password")@127.0.0.1:$(cat "$pg_dir/port")/$pg_db"
}

# True when the cluster of $pg_dir is up and answers.
pg_running() {
    [ -f "$pg_dir/port" ] && [ -d "$pg_dir/data" ] &&
        pg_as_owner "$(pg_bin)/pg_ctl" -D "$pg_dir/data" status >/dev/null 2>&1 &&
        pg_as_owner "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$(cat "$pg_dir/port")"
}

# A port nothing listens on (the server's own bind is the final word: start retries).
pg_free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

pg_start() {
    pg_install || { pg_log "cannot install PostgreSQL"; return 1; }
    if pg_running; then
        HOOKRELAY_TEST_DATABASE="$(pg_url)"
        export HOOKRELAY_TEST_DATABASE
        return 0
    fi
    pg_stop_quiet
    pg_started_here=1
    local bin
    bin="$(pg_bin)"
    mkdir -p "$pg_dir" || return 1
    chmod 700 "$pg_dir"
    head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$pg_dir/password"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$pg_dir"
    fi
    pg_as_owner "$bin/initdb" -D "$pg_dir/data" -U postgres --pwfile="$pg_dir/password" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$pg_dir/initdb.log" 2>&1 || { pg_log "initdb failed: $(tail -n 5 "$pg_dir/initdb.log")"; return 1; }
    local port started=""
    for _ in 1 2 3 4 5; do
        port="$(pg_free_port)" || break
        if pg_as_owner "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$pg_dir \
                -c max_connections=200 -c fsync=off -c synchronous_commit=off" \
            start >/dev/null 2>&1; then
            started=1
            break
        fi
    done
    if [ -z "$started" ]; then
        pg_log "the server did not start: $(tail -n 5 "$pg_dir/server.log" 2>/dev/null)"
        return 1
    fi
    echo "$port" >"$pg_dir/port"
    pg_as_owner "$bin/createdb" -h "$pg_dir" -p "$port" -U postgres "$pg_db" ||
        { pg_log "createdb failed"; return 1; }
    HOOKRELAY_TEST_DATABASE="$(pg_url)"
    export HOOKRELAY_TEST_DATABASE
    pg_log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, dir $pg_dir"
}

# Stops the cluster only if this shell started it: a cluster it found running is someone
# else's (another `start`), left for its own `stop`.
pg_stop_if_ours() {
    if [ -n "${pg_started_here:-}" ]; then
        pg_stop
    fi
}

# Stops the cluster if it runs and removes its directory; silent when there is none.
pg_stop_quiet() {
    if [ -d "$pg_dir/data" ]; then
        pg_as_owner "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pg_dir"
}

pg_stop() {
    pg_stop_quiet
    pg_log "stopped, $pg_dir removed"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: start, export, and stop when the sourcing shell exits (after its own EXIT trap).
    if pg_start; then
        pg_previous_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
        # shellcheck disable=SC2064
        trap "${pg_previous_trap:+$pg_previous_trap; }pg_stop_if_ours" EXIT
    else
        return 1
    fi
else
    set -euo pipefail
    case "${1:-start}" in
        start)
            pg_start
            echo "export HOOKRELAY_TEST_DATABASE='$HOOKRELAY_TEST_DATABASE'"
            ;;
        stop) pg_stop ;;
        install) pg_install ;;
        run)
            shift
            [ "${1:-}" = "--" ] && shift
            pg_start
            trap pg_stop_if_ours EXIT
            "$@"
            ;;
        *)
            echo "usage: $0 [start|stop|install|run -- CMD...]" >&2
            exit 2
            ;;
    esac
fi
