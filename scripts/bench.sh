#!/usr/bin/env bash
# make bench: measures the speed and memory targets of the sanitizer, the ingest, the upload
# memory, the timeline page's latency, the resumable uploads, the export and the capture-time
# photo measure against baselines taken
# in the same run, prints a summary table and rewrites the generated part of
# docs/PERFORMANCE.md. It starts what it needs (PostgreSQL and MinIO through
# scripts/services.sh, the real server binary on a free port of 127.0.0.1) and cleans up after
# itself: its databases, buckets, server processes and temp files.
#
#   1. sanitizer and thumbnails: go test -bench on imagestore; imagestore's thumbnails against
#      vipsthumbnail on the same 12 MP JPEG, baseline and progressive, on one core
#   2. ingest: 8 clients uploading 4 MB photos to the server, against PutObject to MinIO, in two
#      setups, each with a private MinIO that this script starts: everything sharing
#      the cores, then MinIO pinned to one core and the rest (server, load generator, the
#      PostgreSQL backends of the bench database) to the other with taskset
#   3. upload memory: 16 concurrent 20 MB uploads to a fresh server, peak RSS against idle RSS
#   4. timeline page p99: 32 clients GET a procedure's timeline (8 timepoints x 3 views of
#      photos), against a static file of the same server
#   6. resumable uploads: the family page's tus path against its one-request upload
#      of the same 4 MB photo, one at a time, through a proxy limiting the upstream to 100 Mbit/s
#   5. research export: go test -bench BenchmarkExport on followup: 1,000
#      photos exported from MinIO, against a plain copy of the same objects into one new object
#      (and, for information, reading them one by one and in parallel)
#   7. photo quality at capture: go test -bench BenchmarkQualityInBrowser on web: the
#      family page's measure of a 12 MP photo in Chromium with the CPU slowed four times
#
# A missed target is recorded in the document, not an error; the exit status is non-zero only
# when something could not be measured (a failed build, a server that would not start, failed
# requests). Knobs (environment): INGEST_UPLOADS, INGEST_SECONDS, INGEST_ROUNDS, THUMB_RUNS, TIMELINE_REQUESTS,
# TIMELINE_SECONDS, EXPORT_BENCHTIME (go test -benchtime of the export, 2x), STORE_CPU and
# APP_CPUS (the cores of the pinned ingest setup, 0 and 1), BENCH_KEEP=1 (keep the work folder
# with the photos, results and server logs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
INGEST_UPLOADS=${INGEST_UPLOADS:-300}
INGEST_SECONDS=${INGEST_SECONDS:-60}
INGEST_CLIENTS=8
INGEST_ROUNDS=${INGEST_ROUNDS:-4}
[[ $INGEST_ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench: INGEST_ROUNDS must be a number of rounds, 1 or more" >&2; exit 2; }
MEMORY_UPLOADS=16
THUMB_RUNS=${THUMB_RUNS:-10}
TIMELINE_CLIENTS=32
TIMELINE_REQUESTS=${TIMELINE_REQUESTS:-20000}
TIMELINE_SECONDS=${TIMELINE_SECONDS:-30}
EXPORT_BENCHTIME=${EXPORT_BENCHTIME:-2x}
RESUMABLE_PAIRS=${RESUMABLE_PAIRS:-10} # a link takes 30 photos a minute
STORE_CPU=${STORE_CPU:-0}
APP_CPUS=${APP_CPUS:-1}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dermfollow-bench.XXXXXX")
results=$work/results
mkdir -p "$results"
run_id=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
servers=() databases=() buckets=() # what clean-up stops, drops and removes
pinner=""                           # the loop pinning PostgreSQL backends, while it runs
run_on=()                           # a command prefix (taskset) for the server start_server starts

# ----------------------------------------------------------------------------------------------
# services, the server binary, clean-up

cleanup() {
	local rc=$? pid db args=()
	set +e
	[[ -n $pinner ]] && stop_pinner
	for pid in "${servers[@]}"; do stop_server "$pid"; done # a copy: stop_server edits the list
	for db in "${databases[@]}"; do
		psql_admin -d postgres -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || say "could not drop database $db"
	done
	for b in "${buckets[@]}"; do args+=(-bucket "$b"); done
	if ((${#args[@]})) && [[ -x $work/loadtest ]]; then
		"$work/loadtest" cleanup "${args[@]}" || say "could not remove every bench bucket (${buckets[*]})"
	fi
	if [[ $rc -ne 0 || ${BENCH_KEEP:-} == 1 ]]; then
		say "work folder kept: $work (server logs and results in $work/results)"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_port=${PG_PORT:-54329} # as scripts/services.sh
psql_admin() { "$DERMFOLLOW_TEST_PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -X "$@"; }

# server_env exports the configuration of the server named $1 (in a subshell of the caller).
server_env() { # tag port
	local tag=$1 port=$2
	unset DERMFOLLOW_STORE_DIR DERMFOLLOW_SMTP_URL DERMFOLLOW_PROTOCOL_DIR DERMFOLLOW_TRUSTED_PROXIES
	export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/bench_${run_id}_$tag?sslmode=disable"
	# The loads send hundreds of photos through the demo's one link: lift the quotas that would
	# stop one family doing that (the quotas cost their queries all the same).
	export DERMFOLLOW_PHOTO_QUOTA=link-per-minute=1000000,link-photos=1000000,link-bytes=1000000000000,step-photos=1000000,step-bytes=1000000000000
	export DERMFOLLOW_ADDR=127.0.0.1:$port DERMFOLLOW_BASE_URL=http://127.0.0.1:$port
	export DERMFOLLOW_S3_ENDPOINT=$s3_endpoint
	export DERMFOLLOW_S3_ACCESS_KEY=$s3_access_key DERMFOLLOW_S3_SECRET_KEY=$s3_secret_key
	export DERMFOLLOW_S3_TLS=false DERMFOLLOW_S3_SSE=true DERMFOLLOW_S3_BUCKET=bench-$run_id-$tag
	export DERMFOLLOW_SECRET_KEY=$secret_key
	export DERMFOLLOW_LOG_LEVEL=warn DERMFOLLOW_LOG_FORMAT=json DERMFOLLOW_SHUTDOWN_TIMEOUT=15s
}

# start_server gives a server its own database and bucket (in the current store: the test
# MinIO, or the private one of start_minio), seeds the demo procedure and its parent link with
# the CLI, then starts `serve` (prefixed with run_on) and waits until it is ready. It sets server_pid, server_db and upload_url (the parent
# link's upload endpoint).
start_server() { # tag
	local tag=$1 port mport link i
	port=$("$work/loadtest" freeport)
	server_db=bench_${run_id}_$tag
	psql_admin -d postgres -qc "create database $server_db" >/dev/null
	databases+=("$server_db")
	[[ $s3_endpoint == "$DERMFOLLOW_TEST_S3_ENDPOINT" ]] && buckets+=("bench-$run_id-$tag") # a private MinIO goes whole
	(server_env "$tag" "$port" && exec "$work/dermfollow" migrate) >>"$results/server-$tag-setup.log" 2>&1 ||
		die "migrate failed; see $results/server-$tag-setup.log"
	link=$( (server_env "$tag" "$port" && exec "$work/dermfollow" demo) 2>>"$results/server-$tag-setup.log" |
		sed -n 's/^ *Parent link: *//p') || die "demo failed; see $results/server-$tag-setup.log"
	[[ $link == http://127.0.0.1:$port/p/* ]] || die "demo printed no parent link; see $results/server-$tag-setup.log"
	upload_url=$link/photos
	# The metrics listener on a free port too: its default, 127.0.0.1:9464, may be another
	# server's on this machine.
	mport=$("$work/loadtest" freeport)
	(server_env "$tag" "$port" && export DERMFOLLOW_METRICS_ADDR=127.0.0.1:$mport &&
		exec "${run_on[@]}" "$work/dermfollow" serve -no-migrate) >"$results/server-$tag.log" 2>&1 &
	server_pid=$!
	servers+=("$server_pid")
	for i in $(seq 1 120); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
		kill -0 "$server_pid" 2>/dev/null || die "the server exited; see $results/server-$tag.log"
		((i < 120)) || die "the server was not ready after 60 s; see $results/server-$tag.log"
		sleep 0.5
	done
	say "server $tag: pid $server_pid on 127.0.0.1:$port, database $server_db"
}

# stop_server stops a server (or a private MinIO) this script started (SIGTERM, then SIGKILL
# after 20 s) and forgets its pid, so that clean-up never signals a process that later reuses
# the number.
stop_server() { # pid
	local pid=$1 i left=()
	for i in "${servers[@]}"; do [[ $i == "$pid" ]] || left+=("$i"); done
	servers=("${left[@]}")
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

# use_store_shared points the servers and baselines started next at the test MinIO of services.sh.
use_store_shared() {
	s3_endpoint=$DERMFOLLOW_TEST_S3_ENDPOINT s3_access_key=$DERMFOLLOW_TEST_S3_ACCESS_KEY
	s3_secret_key=$DERMFOLLOW_TEST_S3_SECRET_KEY
}

# start_minio starts a private MinIO (the test binary and KMS key) on a free port with an empty
# data folder, its command prefixed with the rest of the arguments (taskset), and points the
# servers and baselines started next at it. Nothing else on the machine talks to it, it can be
# pinned, and its CPU time is known. It sets minio_pid.
start_minio() { # tag [prefix...]
	local tag=$1 port i
	shift
	port=$("$work/loadtest" freeport)
	minio_dir=$work/minio-$tag
	mkdir -p "$minio_dir"
	MINIO_ROOT_USER=bench MINIO_ROOT_PASSWORD=$minio_secret MINIO_KMS_SECRET_KEY=$DERMFOLLOW_TEST_MINIO_KMS_KEY \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		"$@" "$DERMFOLLOW_TEST_MINIO_BIN" server "$minio_dir/data" --address "127.0.0.1:$port" --quiet \
		>"$results/minio-$tag.log" 2>&1 &
	minio_pid=$!
	servers+=("$minio_pid")
	for i in $(seq 1 120); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/minio/health/ready" 2>/dev/null && break
		kill -0 "$minio_pid" 2>/dev/null || die "the private MinIO exited; see $results/minio-$tag.log"
		((i < 120)) || die "the private MinIO was not ready after 60 s; see $results/minio-$tag.log"
		sleep 0.5
	done
	s3_endpoint=127.0.0.1:$port s3_access_key=bench s3_secret_key=$minio_secret
	say "MinIO $tag: pid $minio_pid on 127.0.0.1:$port, CPUs $(cpus_of "$minio_pid")"
}

# stop_minio stops the private MinIO, removes its data and points back at the test MinIO.
stop_minio() {
	stop_server "$minio_pid"
	rm -rf "$minio_dir"
	use_store_shared
}

cpus_of() { awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$1/status"; }

# pin_backends pins the PostgreSQL backends serving database $1 to the cores $2 as they appear
# (it looks every second until stopped), and lists their pids in file $3. Only that database's
# backends: the cluster and its background processes serve other work on the machine too.
pin_backends() { # database cpus file
	local pid
	taskset -pc "$2" "$BASHPID" >/dev/null # its own psql and sleep run there too
	while :; do
		for pid in $(psql_admin -d postgres -tAc "select pid from pg_stat_activity where datname = '$1'" 2>/dev/null); do
			grep -qx "$pid" "$3" && continue
			taskset -pc "$2" "$pid" >/dev/null 2>&1 && echo "$pid" >>"$3"
		done
		sleep 1
	done
}

stop_pinner() {
	kill "$pinner" 2>/dev/null
	wait "$pinner" 2>/dev/null || true # 143: it ended by the signal, as it should
	pinner=""
}

# cpu_watch names the processes whose CPU time a load accounts: the given ones and MinIO, when
# services.sh started it (its pid file names a live minio process).
cpu_watch() { # name=pid...
	local pid list
	list=$(IFS=,; echo "$*")
	if [[ -f $root/.dev/minio.pid ]] && pid=$(cat "$root/.dev/minio.pid") &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q minio; then
		list=${list:+$list,}minio=$pid
	fi
	echo "$list"
}

# settle waits, at most 90 s, until the machine has been nearly idle (under 15% of its CPU busy)
# for a second, so that the work a previous benchmark leaves behind (MinIO removing deleted
# objects from its trash, PostgreSQL's checkpoints, the kernel writing dirty pages) does not
# run during the next timed load.
settle() { # what is next
	local waited=0 a b busy
	read -ra a < <(head -1 /proc/stat)
	while ((waited < 90)); do
		sleep 1
		waited=$((waited + 1))
		read -ra b < <(head -1 /proc/stat)
		local total=0 i
		for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
		busy=$((total - (b[4] + b[5] - a[4] - a[5])))
		a=("${b[@]}")
		((total > 0 && busy * 100 < total * 15)) && break
	done
	say "$1: the machine was quiet after ${waited}s (${busy:-?} of ${total:-?} ticks busy in the last second)"
}

# thumbs_pending counts the server's photos that still lack thumbnails.
thumbs_pending() { # database
	psql_admin -d "$1" -tAc "select count(*) filter (where thumbnails_at is null) || ' ' || count(*) from photos"
}

# ----------------------------------------------------------------------------------------------
# the benchmarks

# 1. Sanitizer and thumbnails.
bench_imagestore() {
	local pin=() kind in out
	say "1/4 imagestore benchmarks (go test -bench)"
	"$GO" test -run '^$' -bench . -benchmem ./imagestore/ 2>&1 | tee "$results/gotest-bench.txt"
	say "1/4 thumbnails: imagestore vs vipsthumbnail on a 12 MP JPEG, baseline and progressive, $THUMB_RUNS runs each, one core"
	"$work/loadtest" photo -out "$work/photo-12mp.jpg" -width 4000 -height 3000 -quality 92 -noise 10 -min-mb 3 -max-mb 5
	# The same picture as a progressive JPEG, 4:2:0 like the baseline one: libjpeg's default
	# script, through vips (which would not subsample at this quality unless told).
	vips copy "$work/photo-12mp.jpg" "$work/photo-12mp-progressive.jpg[Q=92,interlace,subsample-mode=on]"
	# One core for both: the helper and the vipsthumbnail it starts pinned to the
	# last CPU, with one Go thread and one vips worker.
	command -v taskset >/dev/null && pin=(taskset -c "$(($(nproc) - 1))")
	for kind in baseline progressive; do
		in=$work/photo-12mp.jpg out=$results/thumbs.json
		[[ $kind == baseline ]] || in=$work/photo-12mp-$kind.jpg out=$results/thumbs-$kind.json
		GOMAXPROCS=1 VIPS_CONCURRENCY=1 "${pin[@]}" "$work/loadtest" thumbs -kind "$kind" -in "$in" -n "$THUMB_RUNS" \
			-size 320 -vips "$(command -v vipsthumbnail)" -out "$out"
	done
}

# 2. Ingest: the server's upload path against a plain PutObject of the same
# bytes to the same private MinIO, first with everything sharing the cores, then with MinIO on
# a core of its own (STORE_CPU) and the rest on the other (APP_CPUS), as a store on its own
# machine. Each setup gets a fresh MinIO, server and database, and its own baseline.
bench_ingest() {
	local i cores
	ingest_files=()
	for i in 1 2 3 4; do
		"$work/loadtest" photo -out "$work/photo-4mb-$i.jpg" -width 2400 -height 1800 -quality 95 -noise 52 -seed "$i" -min-mb 3.5 -max-mb 4.5
		ingest_files+=("$work/photo-4mb-$i.jpg")
	done
	ingest_setup shared
	cores=$(nproc)
	if ((cores < 2)); then
		say "2/4 ingest, MinIO on its own core: skipped, this machine has $cores core"
		printf '{"skipped": "this machine has %d core; the setup needs 2"}\n' "$cores" >"$results/ingest-pinned-after.json"
	else
		ingest_setup pinned
	fi
}

# ingest_put is round $1's baseline: $2 photos at most, in $3 s at most, by PutObject
# straight to the setup's MinIO, into a bucket of the round's own.
ingest_put() { # round uploads seconds
	settle "ingest ($setup, round $1, PutObject)"
	DERMFOLLOW_TEST_S3_ENDPOINT=$s3_endpoint DERMFOLLOW_TEST_S3_ACCESS_KEY=$s3_access_key DERMFOLLOW_TEST_S3_SECRET_KEY=$s3_secret_key \
		"${app_pin[@]}" "$work/loadtest" put -bucket "bench-$run_id-put-$1" -files "$files" \
		-c "$INGEST_CLIENTS" -n "$2" -duration "$3s" -cpu "minio=$minio_pid" -out "$results/put$suffix-round$1.json"
}

# ingest_post is round $1's ingest through the server, as ingest_put.
ingest_post() { # round uploads seconds
	settle "ingest ($setup, round $1, server)"
	"${app_pin[@]}" "$work/loadtest" ingest -url "$upload_url" -files "$files" \
		-c "$INGEST_CLIENTS" -n "$2" -duration "$3s" -cpu "server=$server_pid,minio=$minio_pid" \
		-out "$results/ingest$suffix-round$1.json"
}

ingest_setup() { # shared|pinned
	local setup=$1 suffix="" tag=ingest files pending photos store_pin=() app_pin=()
	files=$(IFS=,; echo "${ingest_files[*]}")
	if [[ $setup == pinned ]]; then
		suffix=-pinned tag=pinned store_pin=(taskset -c "$STORE_CPU") app_pin=(taskset -c "$APP_CPUS")
	fi
	say "2/4 ingest ($setup): $INGEST_CLIENTS clients, up to $INGEST_UPLOADS uploads of 4 MB or ${INGEST_SECONDS}s"
	start_minio "$tag" "${store_pin[@]}"
	run_on=("${app_pin[@]}")
	start_server "$tag"
	run_on=()
	if [[ $setup == pinned ]]; then
		: >"$results/pinned-backends"
		pin_backends "$server_db" "$APP_CPUS" "$results/pinned-backends" &
		pinner=$!
	fi
	# The two paths go in rounds, which of them goes first alternating, each round a share of
	# the uploads and of the time: one baseline taken before the ingest met a fresh MinIO, and
	# a drift of the machine's state (page cache, other work) fell on one path only.
	local r n=$(((INGEST_UPLOADS + INGEST_ROUNDS - 1) / INGEST_ROUNDS)) secs=$(((INGEST_SECONDS + INGEST_ROUNDS - 1) / INGEST_ROUNDS))
	local puts=() ingests=()
	# An untimed round first: the first puts into an empty MinIO cost it less CPU than any later
	# (measured: 13 ms per photo against 17 to 19), and a store in use is never empty.
	ingest_put warmup "$n" "$secs"
	for ((r = 1; r <= INGEST_ROUNDS; r++)); do
		if ((r % 2)); then
			ingest_put "$r" "$n" "$secs"
			ingest_post "$r" "$n" "$secs"
		else
			ingest_post "$r" "$n" "$secs"
			ingest_put "$r" "$n" "$secs"
		fi
		puts+=("$results/put$suffix-round$r.json") ingests+=("$results/ingest$suffix-round$r.json")
	done
	"$work/loadtest" merge -out "$results/put$suffix.json" "${puts[@]}"
	"$work/loadtest" merge -out "$results/ingest$suffix.json" "${ingests[@]}"
	read -r pending photos < <(thumbs_pending "$server_db")
	if [[ $setup == pinned ]]; then
		stop_pinner
		printf '{"thumbs_pending": %d, "photos": %d, "minio_cpus": "%s", "server_cpus": "%s", "pg_backends_pinned": %d}\n' \
			"$pending" "$photos" "$(cpus_of "$minio_pid")" "$(cpus_of "$server_pid")" "$(wc -l <"$results/pinned-backends")" \
			>"$results/ingest$suffix-after.json"
	else
		printf '{"thumbs_pending": %d, "photos": %d}\n' "$pending" "$photos" >"$results/ingest$suffix-after.json"
	fi
	stop_server "$server_pid"
	stop_minio
}

# 3. Upload memory: a fresh process, because VmHWM cannot be reset.
bench_upload_memory() {
	local pending=0 photos=0 waited=0 hwm
	say "3/4 upload memory: $MEMORY_UPLOADS concurrent 20 MB uploads to a fresh server"
	"$work/loadtest" photo -out "$work/photo-20mb.jpg" -width 6000 -height 4500 -quality 100 -noise 6 -min-mb 18 -max-mb 24
	start_server memory
	sleep 2 # let start-up allocations settle before the idle figure is taken
	"$work/loadtest" ingest -kind memory -url "$upload_url" -files "$work/photo-20mb.jpg" \
		-c "$MEMORY_UPLOADS" -n "$MEMORY_UPLOADS" -warmup 0 -duration 120s -pid "$server_pid" \
		-cpu "$(cpu_watch "server=$server_pid")" -out "$results/memory.json"
	# The background thumbnailer decodes each new 27 MP photo after the uploads: report its
	# peak too, waiting at most 90 s for it.
	while read -r pending photos < <(thumbs_pending "$server_db") && ((pending > 0 && waited < 90)); do
		sleep 1
		waited=$((waited + 1))
	done
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
	printf '{"hwm_kb": %d, "thumbs_pending": %d, "waited_s": %d}\n' "$hwm" "$pending" "$waited" >"$results/memory-after.json"
	stop_server "$server_pid"
}

# 4. Timeline page: p99 of the clinician's timeline page under 32 concurrent
# requests, against a static file of the same server in the same run. The demo procedure gets a
# photo in every view of every timepoint through the clinic API, and every thumbnail is made
# before the load, so the background worker does not compete with the page.
bench_timeline_p99() {
	local base port demo email password token proc pending=1 photos=0 waited=0
	say "4/4 timeline page p99: $TIMELINE_CLIENTS clients, up to $TIMELINE_REQUESTS requests or ${TIMELINE_SECONDS}s per load"
	"$work/loadtest" photo -out "$work/photo-timeline.jpg" -width 1200 -height 900 -quality 88 -noise 8 -seed 7
	start_server timeline
	base=${upload_url%%/p/*}
	port=${base##*:}
	# demo again: a fresh password for the demo clinician, printed only to this pipe.
	demo=$( (server_env timeline "$port" && exec "$work/dermfollow" demo) 2>>"$results/server-timeline-setup.log") ||
		die "demo failed; see $results/server-timeline-setup.log"
	email=$(sed -n 's/^ *Clinician login: *//p' <<<"$demo")
	password=$(sed -n 's/^ *Password: *//p' <<<"$demo")
	[[ -n $email && -n $password ]] || die "demo printed no login; see $results/server-timeline-setup.log"
	token=$( (server_env timeline "$port" && exec "$work/dermfollow" token create -email "$email") 2>>"$results/server-timeline-setup.log") ||
		die "token create failed; see $results/server-timeline-setup.log"
	proc=$(psql_admin -d "$server_db" -tAc "select id from procedures order by created_at limit 1")
	[[ -n $proc ]] || die "the demo seeded no procedure"
	LOADTEST_TOKEN=$token "$work/loadtest" fill -base "$base" -procedure "$proc" -file "$work/photo-timeline.jpg"
	while read -r pending photos < <(thumbs_pending "$server_db") && ((pending > 0 && waited < 120)); do
		sleep 1
		waited=$((waited + 1))
	done
	((pending == 0)) || die "$pending of $photos photos still had no thumbnails after ${waited}s"
	settle "timeline load"
	LOADTEST_PASSWORD=$password "$work/loadtest" timeline -base "$base" -procedure "$proc" -email "$email" \
		-c "$TIMELINE_CLIENTS" -n "$TIMELINE_REQUESTS" -duration "${TIMELINE_SECONDS}s" \
		-cpu "$(cpu_watch "server=$server_pid")" -out "$results/timeline.json"
	stop_server "$server_pid"
}

# ----------------------------------------------------------------------------------------------
# 6. Resumable uploads: the resumable path's throughput on a fast link as a ratio to
# the one-request upload of the same bytes, in the same run against the same server, and its
# bytes on the wire.
bench_resumable() {
	say "resumable uploads: ${RESUMABLE_PAIRS} photos each way through a 100 Mbit/s link"
	"$work/loadtest" photo -out "$work/photo-resumable.jpg" -width 2400 -height 1800 -quality 95 -noise 52 -seed 11 -min-mb 3.5 -max-mb 4.5
	start_server resumable
	settle "resumable uploads"
	"$work/loadtest" resumable -link "${upload_url%/photos}" -file "$work/photo-resumable.jpg" -n "$RESUMABLE_PAIRS" \
		-rate 12500000 -out "$results/resumable.json"
	stop_server "$server_pid"
}

# ----------------------------------------------------------------------------------------------
# 5. Research export: the export job of 1,000 photos against reading the same objects
# from MinIO in the same run. A go test benchmark (followup/export/export_test.go, BenchmarkExport):
# it makes its own database and bucket on the test PostgreSQL and MinIO, whose settings main
# exported from `scripts/services.sh up test` (DERMFOLLOW_TEST_*), then drops the database and
# removes the bucket. A failed run does not stop the other benchmarks; the report records the
# missing figures as ERROR (non-zero exit).
bench_export() {
	say "export: go test -bench BenchmarkExport -benchtime $EXPORT_BENCHTIME ./followup/export/ (1,000 photos from MinIO)"
	# Built first, so that the compiler is done before the machine is let settle.
	"$GO" test -c -o "$work/export.test" ./followup/export/ >"$results/gotest-export.txt" 2>&1 ||
		say "the export benchmark did not build; see $results/gotest-export.txt"
	settle export
	(cd followup/export && "$work/export.test" -test.run '^$' -test.bench BenchmarkExport -test.benchtime "$EXPORT_BENCHTIME") \
		>>"$results/gotest-export.txt" 2>&1 || say "the export benchmark failed; see $results/gotest-export.txt"
	grep -E '^(Benchmark|ok|FAIL|PASS)' "$results/gotest-export.txt" >&2 || true
}

# 7. The capture-time photo measure: a go test benchmark (web/quality_browser_test.go,
# BenchmarkQualityInBrowser) in headless Chromium with the CPU slowed four times.
bench_quality() {
	say "quality: go test -bench BenchmarkQualityInBrowser ./web/ (12 MP photo, Chromium, CPU x4)"
	"$GO" test -c -o "$work/web.test" ./web/ >"$results/gotest-quality.txt" 2>&1 ||
		say "the web benchmarks did not build; see $results/gotest-quality.txt"
	settle quality
	(cd web && "$work/web.test" -test.run '^$' -test.bench BenchmarkQualityInBrowser) \
		>>"$results/gotest-quality.txt" 2>&1 || say "the quality benchmark failed; see $results/gotest-quality.txt"
	grep -E '^(Benchmark|ok|FAIL|PASS)' "$results/gotest-quality.txt" >&2 || true
}

# ----------------------------------------------------------------------------------------------

main() {
	local started=$SECONDS rc=0
	cp /proc/loadavg "$results/loadavg-start"
	scripts/services.sh deps bench
	eval "$(scripts/services.sh up test)"
	command -v vipsthumbnail >/dev/null || die "vipsthumbnail is missing (scripts/services.sh deps bench installs libvips-tools)"
	[[ -x ${DERMFOLLOW_TEST_MINIO_BIN:-} && -n ${DERMFOLLOW_TEST_MINIO_KMS_KEY:-} ]] ||
		die "scripts/services.sh did not name the MinIO binary and KMS key the private MinIO needs"
	secret_key=$(head -c 32 /dev/urandom | base64)
	minio_secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	use_store_shared

	say "building the server and the load generator"
	"$GO" build -o "$work/dermfollow" ./cmd/dermfollow
	"$GO" build -o "$work/loadtest" ./scripts/loadtest

	# BENCH_ONLY="resumable export" runs only those sections, into BENCH_RESULTS.
	local section
	for section in ${BENCH_ONLY:-imagestore ingest upload_memory timeline_p99 resumable export quality}; do
		declare -F "bench_$section" >/dev/null || die "BENCH_ONLY: no section $section"
		"bench_$section"
	done

	if [[ -n ${BENCH_ONLY:-} ]]; then # a partial run: its results kept, the document left alone
		mkdir -p "${BENCH_RESULTS:=.bench-results}" && cp -r "$results"/. "$BENCH_RESULTS"/
		say "BENCH_ONLY: results in $BENCH_RESULTS; docs/PERFORMANCE.md not rewritten"
		return 0
	fi
	"$work/loadtest" report -results "$results" -doc docs/PERFORMANCE.md \
		-commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)" || rc=$?
	say "done in $((SECONDS - started)) s"
	# 3: the report was written but some benchmark had errors (failed requests).
	return "$rc"
}

main "$@"
