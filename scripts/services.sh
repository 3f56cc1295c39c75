#!/usr/bin/env bash
# Starts the services Dermfollow needs for development and tests, each only if it is not
# already running: a private PostgreSQL cluster, MinIO (with a KMS key, so SSE-S3 works) and
# Mailpit. Everything lives below the project: tools in .tools/, data and logs in .dev/.
#
#   scripts/services.sh deps run|test   install missing Debian packages (root only)
#   scripts/services.sh up   run|test   start what is missing; print `export` lines on stdout
#                                       (run: PostgreSQL and Mailpit; MinIO too with S3=1)
#   scripts/services.sh down            stop what this script started
#
# Progress goes to stderr so that `eval "$(scripts/services.sh up test)"` works.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools/bin"
dev="$root/.dev"
PG_PORT=${PG_PORT:-54329}
MINIO_PORT=${MINIO_PORT:-9100}
SMTP_PORT=${SMTP_PORT:-1025}
MAILPIT_PORT=${MAILPIT_PORT:-8025}
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MAILPIT_VERSION=v1.28.0
MINIO_USER=dermfollow
MINIO_PASSWORD=dermfollow-dev-secret
# A development-only KMS key: lets MinIO encrypt objects at rest (SSE-S3) as production does.
# Production uses its own key or a KES server; see README.
MINIO_KMS_KEY="dermfollow-dev:$(printf 'dermfollow development kms key!!' | base64)"

say() { printf 'services: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

pg_bindir() {
	local d
	# Debian keeps the server programs (and psql) together in one versioned folder.
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		[[ -x $d/initdb && -x $d/psql ]] && { echo "$d"; return; }
	done
	if d=$(command -v initdb 2>/dev/null); then
		d=$(dirname "$(readlink -f "$d")")
		[[ -x $d/psql ]] && { echo "$d"; return; }
	fi
	return 1
}

apt_install() {
	if [[ $(id -u) -ne 0 ]]; then
		die "missing: $*. Install them (Debian/Ubuntu: sudo apt-get install $*) and run again."
	fi
	say "installing Debian packages: $*"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >"$dev/apt.log" 2>&1; then
		apt-get update -q >>"$dev/apt.log" 2>&1
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$dev/apt.log" 2>&1 ||
			die "apt-get install $* failed; see $dev/apt.log"
	fi
}

deps() {
	local want=()
	pg_bindir >/dev/null || want+=(postgresql)
	command -v curl >/dev/null || want+=(curl)
	if [[ ${1:-run} == test || ${1:-run} == bench ]]; then
		[[ -x /usr/bin/chromium ]] || want+=(chromium)
		command -v exiftool >/dev/null || want+=(libimage-exiftool-perl)
		# The clinic's and the family's pages in Chinese: without a CJK font Chromium draws
		# boxes in the screenshots.
		[[ -d /usr/share/fonts/opentype/noto ]] && ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 ||
			want+=(fonts-noto-cjk)
	fi
	if [[ ${1:-run} == bench ]]; then
		command -v vipsthumbnail >/dev/null || want+=(libvips-tools)
	fi
	((${#want[@]} == 0)) || apt_install "${want[@]}"
}

# run_pg runs a PostgreSQL program as the owner of the cluster: initdb refuses root.
run_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# pgdir is where the private cluster lives: in the project, unless the postgres user (which
# must own it, as initdb refuses root) cannot reach the project folder, as in a private
# temp dir; then a folder of its own under /var/tmp, named after the project path.
pgdir() {
	if [[ $(id -u) -ne 0 ]] || runuser -u postgres -- test -x "$dev" 2>/dev/null; then
		echo "$dev/pg"
	else
		echo "/var/tmp/dermfollow-pg-$(printf '%s' "$root" | sha256sum | cut -c1-12)"
	fi
}

pg_up() {
	local bin pg data sock
	mkdir -p "$dev"
	pg=$(pgdir)
	data="$pg/data" sock="$pg/sock"
	bin=$(pg_bindir) || die "PostgreSQL is not installed (run: scripts/services.sh deps run)"
	# A server already answering on the port (another checkout's, say) is used as it is, as
	# long as it still has its data: one whose folder was removed under it answers until it
	# falls over.
	if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
		local their
		their=$("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "show data_directory" postgres 2>/dev/null) ||
			die "port $PG_PORT answers but not as this project's PostgreSQL (user postgres, trust); stop it or set PG_PORT"
		[[ -f $their/PG_VERSION ]] ||
			die "the PostgreSQL on port $PG_PORT runs on a data folder that is gone ($their); stop it (pkill -f 'postgres -D $their') or set PG_PORT"
		[[ $their == "$data" ]] || say "using the PostgreSQL already on port $PG_PORT (data in $their)"
		ensure_db "$bin"
		return
	fi
	mkdir -p "$pg"
	if [[ $(id -u) -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "user postgres missing; install Debian's postgresql package"
		chown postgres: "$pg"
	fi
	if [[ ! -f $data/PG_VERSION ]]; then
		say "creating a PostgreSQL cluster in $data"
		run_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dev/pg-initdb.log" 2>&1 ||
			die "initdb failed; see $dev/pg-initdb.log"
		# Development and tests only: a crash of this machine may lose the last commits, a crash
		# of PostgreSQL itself does not (fsync only matters for the OS).
		cat >>"$data/postgresql.conf" <<-CONF
			listen_addresses = '127.0.0.1'
			port = $PG_PORT
			unix_socket_directories = '$sock'
			fsync = off
			full_page_writes = off
			max_connections = 300
			shared_buffers = 256MB
		CONF
	fi
	run_pg mkdir -p "$sock"
	if ! run_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
		run_pg "$bin/pg_ctl" -D "$data" -l "$pg/server.log" -w -t 60 start >/dev/null ||
			die "PostgreSQL did not start; see $pg/server.log"
	fi
	ensure_db "$bin"
}

ensure_db() {
	local bin=$1
	if ! "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname='dermfollow'" postgres | grep -q 1; then
		"$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create database dermfollow" postgres
	fi
}

pg_down() {
	local bin pg
	bin=$(pg_bindir) || return 0
	pg=$(pgdir)
	[[ -f $pg/data/PG_VERSION ]] || return 0
	run_pg "$bin/pg_ctl" -D "$pg/data" -m fast stop >/dev/null 2>&1 || true
}

go_tool() { # name module version
	local name=$1 module=$2 version=$3
	if [[ ! -x $tools/$name ]]; then
		say "building $name $version into $tools (a few minutes the first time)"
		mkdir -p "$tools"
		(cd "$root" && GOBIN="$tools" GOFLAGS=-mod=mod go install "$module@$version") >"$dev/$name-build.log" 2>&1 ||
			die "building $name failed; see $dev/$name-build.log"
	fi
}

wait_http() { # url what
	local i
	for i in $(seq 1 120); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.5
	done
	die "$2 did not come up; see its log in $dev"
}

# start_bg runs a server detached from this shell, so it outlives make.
start_bg() { # log pidfile cmd...
	local log=$1 pidfile=$2
	shift 2
	setsid nohup "$@" >"$log" 2>&1 </dev/null &
	echo $! >"$pidfile"
}

# listener_cmd prints the command line of the process listening on port (to find a server's data
# folder), or nothing when it cannot be told.
listener_cmd() { # port
	local pid
	pid=$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
	[[ -n $pid && -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline"
}

minio_up() {
	if curl -fsS -o /dev/null "http://127.0.0.1:$MINIO_PORT/minio/health/live" 2>/dev/null; then
		# Reused as it is, unless its data folder is gone (a removed checkout's MinIO).
		local cmd dir
		cmd=$(listener_cmd "$MINIO_PORT")
		dir=$(sed -n 's/.* server \([^ ]*\) .*/\1/p' <<<"$cmd")
		if [[ -n $dir && ! -d $dir ]]; then
			die "the MinIO on port $MINIO_PORT runs on a data folder that is gone ($dir); stop it or set MINIO_PORT"
		fi
		[[ -z $dir || $dir == "$dev/minio/data" ]] || say "using the MinIO already on port $MINIO_PORT (data in $dir)"
		return 0
	fi
	go_tool minio github.com/minio/minio "$MINIO_VERSION"
	mkdir -p "$dev/minio"
	say "starting MinIO on 127.0.0.1:$MINIO_PORT"
	MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_KMS_SECRET_KEY=$MINIO_KMS_KEY \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		start_bg "$dev/minio.log" "$dev/minio.pid" "$tools/minio" server "$dev/minio/data" \
		--address "127.0.0.1:$MINIO_PORT" --quiet
	wait_http "http://127.0.0.1:$MINIO_PORT/minio/health/live" MinIO
}

mailpit_up() {
	curl -fsS -o /dev/null "http://127.0.0.1:$MAILPIT_PORT/readyz" 2>/dev/null && return 0
	go_tool mailpit github.com/axllent/mailpit "$MAILPIT_VERSION"
	say "starting Mailpit (SMTP 127.0.0.1:$SMTP_PORT, web http://127.0.0.1:$MAILPIT_PORT)"
	start_bg "$dev/mailpit.log" "$dev/mailpit.pid" "$tools/mailpit" \
		--smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_PORT" --smtp-auth-allow-insecure --quiet
	wait_http "http://127.0.0.1:$MAILPIT_PORT/readyz" Mailpit
}

secret_key() {
	[[ -s $dev/secret-key ]] || (umask 077 && head -c 32 /dev/urandom | base64 >"$dev/secret-key")
	cat "$dev/secret-key"
}

up() {
	local mode=${1:-run}
	mkdir -p "$dev"
	deps "$mode"
	pg_up
	# make run stores photos in a local folder: MinIO (four minutes to build the first time)
	# only where it is used, the tests, or make run with S3=1.
	if [[ $mode != run || ${S3:-} == 1 ]]; then
		minio_up
	fi
	mailpit_up
	local pgurl="postgres://postgres@127.0.0.1:$PG_PORT"
	local bindir
	bindir=$(pg_bindir)
	if [[ $mode == run ]]; then
		cat <<-ENV
			export DATABASE_URL=\${DATABASE_URL:-$pgurl/dermfollow?sslmode=disable}
			export DERMFOLLOW_SECRET_KEY=\${DERMFOLLOW_SECRET_KEY:-$(secret_key)}
			export DERMFOLLOW_STORE_DIR=\${DERMFOLLOW_STORE_DIR:-$dev/photos}
			export DERMFOLLOW_SMTP_URL=\${DERMFOLLOW_SMTP_URL:-smtp://127.0.0.1:$SMTP_PORT}
		ENV
		if [[ ${S3:-} == 1 ]]; then
			cat <<-ENV
				export DERMFOLLOW_S3_ENDPOINT=127.0.0.1:$MINIO_PORT DERMFOLLOW_S3_TLS=false
				export DERMFOLLOW_S3_ACCESS_KEY=$MINIO_USER DERMFOLLOW_S3_SECRET_KEY=$MINIO_PASSWORD
			ENV
		fi
	else
		cat <<-ENV
			export DERMFOLLOW_REQUIRE_SERVICES=1
			export DERMFOLLOW_REQUIRE_TOOLS=1
			export DERMFOLLOW_TEST_DATABASE_URL=$pgurl/postgres?sslmode=disable
			export DERMFOLLOW_TEST_PG_BIN=$bindir
			export DERMFOLLOW_TEST_S3_ENDPOINT=127.0.0.1:$MINIO_PORT
			export DERMFOLLOW_TEST_S3_ACCESS_KEY=$MINIO_USER
			export DERMFOLLOW_TEST_S3_SECRET_KEY=$MINIO_PASSWORD
			export DERMFOLLOW_TEST_MINIO_BIN=$tools/minio
			export DERMFOLLOW_TEST_MINIO_KMS_KEY=$MINIO_KMS_KEY
			export DERMFOLLOW_TEST_SMTP_ADDR=127.0.0.1:$SMTP_PORT
			export DERMFOLLOW_TEST_MAILPIT_URL=http://127.0.0.1:$MAILPIT_PORT
			export DERMFOLLOW_TEST_CHROMIUM=/usr/bin/chromium
		ENV
	fi
}

down() {
	local f
	for f in "$dev/minio.pid" "$dev/mailpit.pid"; do
		[[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
	pg_down
}

case ${1:-} in
deps) mkdir -p "$dev"; deps "${2:-run}" ;;
up) up "${2:-run}" ;;
down) down ;;
*) die "usage: $0 deps|up run|test|bench, or down" ;;
esac
