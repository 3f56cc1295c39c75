#!/usr/bin/env bash
# make bench-scale: the seeded-scale benchmark. For each of two
# sizes, small (about 1,000 procedures, two clinics) and large (100,000 procedures in 50
# clinics, 8,000 of them in the measured one), it
#
#   1. makes a database, migrates it (dermfollow migrate) and fills it with scripts/scalegen,
#      and adds a clinician of the measured clinic (dermfollow user add) and an API token;
#   2. starts the real server binary on a free port of 127.0.0.1 (photos in a local folder:
#      the measured pages read rows only);
#
# then loads each page (the worklist, its next page, its search and a state filter, a
# timeline, a patient page, the API's lists) with concurrent clients, page by page in rounds, the
# two sizes in turn in each round (loadtest scale), so that the small size, the large one's baseline, is measured
# under the same load of the rest of the machine; stops the servers and explains each
# background statement and each page's statements at both sizes with EXPLAIN (ANALYZE,
# BUFFERS), JIT off and on, custom and generic plans, and sizes the audit table (followup/export's
# BenchmarkScaleQueries); and writes the comparison of the two sizes (growth ratios against
# the targets) between its own markers in docs/PERFORMANCE.md (loadtest scalereport). About 11 minutes on 2 cores, most
# of it the large size: generating and loading it takes 3 to 5 minutes, its page loads 4.
#
# It drops its databases and removes its folder when done. Knobs (environment): SCALE_CLIENTS
# (8), SCALE_SECONDS (20, per page and size, over its 4 rounds), BENCH_KEEP=1 (keep the work folder and the databases).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
SCALE_CLIENTS=${SCALE_CLIENTS:-8}
SCALE_SECONDS=${SCALE_SECONDS:-20}

say() { printf 'bench-scale: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dermfollow-bench-scale.XXXXXX")
results=$work/results
mkdir -p "$results"
run_id=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
servers=() databases=()

cleanup() {
	local rc=$? db pid
	set +e
	for pid in "${servers[@]}"; do stop_server "$pid"; done
	if [[ ${BENCH_KEEP:-} != 1 ]]; then
		for db in "${databases[@]}"; do
			psql_admin -d postgres -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || say "could not drop database $db"
		done
	fi
	if [[ $rc -ne 0 || ${BENCH_KEEP:-} == 1 ]]; then
		say "work folder kept: $work (databases: ${databases[*]})"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_port=${PG_PORT:-54329} # as scripts/services.sh
psql_admin() { "$DERMFOLLOW_TEST_PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -X "$@"; }

# server_env exports the configuration of the server of database $1 on port $2.
server_env() { # database port
	unset DERMFOLLOW_S3_ENDPOINT DERMFOLLOW_SMTP_URL DERMFOLLOW_PROTOCOL_DIR DERMFOLLOW_TRUSTED_PROXIES
	export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/$1?sslmode=disable"
	export DERMFOLLOW_ADDR=127.0.0.1:$2 DERMFOLLOW_BASE_URL=http://127.0.0.1:$2
	export DERMFOLLOW_STORE_DIR=$work/store-$1 DERMFOLLOW_SECRET_KEY=$secret_key
	export DERMFOLLOW_LOG_LEVEL=warn DERMFOLLOW_LOG_FORMAT=json DERMFOLLOW_SHUTDOWN_TIMEOUT=15s
}

# stop_server stops a server this script started (SIGTERM, then SIGKILL after 20 s) and
# forgets its pid.
stop_server() { # pid
	local pid=$1 i left=()
	for i in "${servers[@]}"; do [[ $i == "$pid" ]] || left+=("$i"); done
	servers=("${left[@]}")
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

# settle waits, at most 60 s, until the machine has been nearly idle (under 15% busy) for a
# second, so that the load starts on cores free of the seeding's after-work (checkpoints,
# autovacuum) as far as other work on the machine allows.
settle() {
	local waited=0 a b busy total i
	read -ra a < <(head -1 /proc/stat)
	while ((waited < 60)); do
		sleep 1
		waited=$((waited + 1))
		read -ra b < <(head -1 /proc/stat)
		total=0
		for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
		busy=$((total - (b[4] + b[5] - a[4] - a[5])))
		a=("${b[@]}")
		((total > 0 && busy * 100 < total * 15)) && break
	done
	say "$1: the machine was quiet after ${waited}s (${busy:-?} of ${total:-?} ticks busy in the last second)"
}

# seed makes size $1's database, migrates and fills it, and adds the benchmark's clinician
# and API token. It sets db_SIZE and token_SIZE.
seed() { # small|large
	local size=$1 db clinic token
	db=bench_scale_${run_id}_$size
	cp /proc/loadavg "$results/loadavg-$size"
	say "$size: database $db"
	psql_admin -d postgres -qc "create database $db" >/dev/null
	databases+=("$db")
	(server_env "$db" 0 && exec "$work/dermfollow" migrate) >>"$results/setup-$size.log" 2>&1 ||
		die "migrate failed; see $results/setup-$size.log"
	say "$size: generating (scalegen -size $size)"
	(server_env "$db" 0 && exec "$work/scalegen" -size "$size" -summary "$results/summary-$size.json") 2>&1 |
		tee -a "$results/setup-$size.log" >&2 || die "scalegen failed; see $results/setup-$size.log"
	clinic=$(sed -n 's/^ *"clinic_name": "\(.*\)",$/\1/p' "$results/summary-$size.json")
	[[ -n $clinic ]] || die "the summary names no clinic"
	# The measured clinic's clinicians sign in with a password alone, as a clinic may allow
	# (dermfollow clinic set): what is measured is the pages, not the second factor.
	(server_env "$db" 0 && exec "$work/dermfollow" clinic set -clinic "$clinic" -require-second-factor=false) \
		>>"$results/setup-$size.log" 2>&1 || die "clinic set failed; see $results/setup-$size.log"
	printf '%s\n' "$password" | (server_env "$db" 0 && exec "$work/dermfollow" user add -clinic "$clinic" -email "$email" -role clinician) \
		>>"$results/setup-$size.log" 2>&1 || die "user add failed; see $results/setup-$size.log"
	token=$( (server_env "$db" 0 && exec "$work/dermfollow" token create -email "$email") 2>>"$results/setup-$size.log") ||
		die "token create failed; see $results/setup-$size.log"
	printf -v "db_$size" '%s' "$db"
	printf -v "token_$size" '%s' "$token"
}

# serve starts the server of size $1's database on a free port and waits until it is ready.
# It sets server_SIZE (the pid) and base_SIZE.
serve() { # small|large
	local size=$1 db port mport pid i
	db=db_$size
	db=${!db}
	port=$("$work/loadtest" freeport)
	mport=$("$work/loadtest" freeport)
	(server_env "$db" "$port" && export DERMFOLLOW_METRICS_ADDR=127.0.0.1:$mport && exec "$work/dermfollow" serve -no-migrate) \
		>"$results/server-$size.log" 2>&1 &
	pid=$!
	servers+=("$pid")
	for i in $(seq 1 120); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || die "the server exited; see $results/server-$size.log"
		((i < 120)) || die "the server was not ready after 60 s; see $results/server-$size.log"
		sleep 0.5
	done
	printf -v "server_$size" '%s' "$pid"
	printf -v "base_$size" '%s' "http://127.0.0.1:$port"
	say "$size: server pid $pid on 127.0.0.1:$port"
}

# explain runs BenchmarkScaleQueries on both sizes' databases, their statements in turn.
explain() {
	say "explaining the statements at both sizes (BenchmarkScaleQueries)"
	(cd followup/export && DERMFOLLOW_SCALE_RESULTS="$results" \
		DERMFOLLOW_SCALE_DATABASES="small=postgres://postgres@127.0.0.1:$pg_port/$db_small?sslmode=disable large=postgres://postgres@127.0.0.1:$pg_port/$db_large?sslmode=disable" \
		"$work/export.test" -test.run '^$' -test.bench BenchmarkScaleQueries -test.benchtime 1x) >"$results/queries.txt" 2>&1 ||
		die "BenchmarkScaleQueries failed; see $results/queries.txt"
}

main() {
	local started=$SECONDS
	eval "$(scripts/services.sh up test)"
	secret_key=$(head -c 32 /dev/urandom | base64)
	say "building the server, the load generator, the generator and the scale benchmark (followup/export's tests)"
	"$GO" build -o "$work/dermfollow" ./cmd/dermfollow
	"$GO" build -o "$work/loadtest" ./scripts/loadtest
	"$GO" build -o "$work/scalegen" ./scripts/scalegen
	"$GO" test -c -o "$work/export.test" ./followup/export/
	email=bench-scale-$run_id@scale.invalid
	password=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
	seed small
	seed large
	serve small
	serve large
	settle "pages"
	say "pages: $SCALE_CLIENTS clients, ${SCALE_SECONDS}s per page and size in 4 rounds, the sizes in turn"
	LOADTEST_PASSWORD=$password LOADTEST_TOKEN_SMALL=$token_small LOADTEST_TOKEN_LARGE=$token_large "$work/loadtest" scale \
		-target "small=$base_small,$server_small,$results/summary-small.json" \
		-target "large=$base_large,$server_large,$results/summary-large.json" \
		-email "$email" -c "$SCALE_CLIENTS" -duration "${SCALE_SECONDS}s" -out "$results"
	stop_server "$server_small"
	stop_server "$server_large"
	explain
	"$work/loadtest" scalereport -results "$results" -doc docs/PERFORMANCE.md \
		-commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)"
	say "done in $((SECONDS - started)) s"
}

main "$@"
