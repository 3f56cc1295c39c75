#!/usr/bin/env bash
# make two-servers: two server processes on one database and one MinIO bucket, behind a
# balancer on http://127.0.0.1:8080 that follows their /readyz, to try the scale-out by hand:
# stop one (kill -TERM), watch it drain, start it again. Ctrl-C stops all three.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
eval "$(S3=1 scripts/services.sh up run)"
export DERMFOLLOW_BASE_URL=http://127.0.0.1:8080
bin/dermfollow migrate >/dev/null
bin/dermfollow demo
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in 1 2; do
	DERMFOLLOW_ADDR=127.0.0.1:808$i DERMFOLLOW_METRICS_ADDR=127.0.0.1:946$((4 + i)) \
		bin/dermfollow serve -no-migrate > >(sed "s/^/server $i: /") 2>&1 &
	pids+=($!)
done
echo "servers: pids ${pids[*]} on :8081 and :8082; the balancer on http://127.0.0.1:8080" >&2
go run ./scripts/twoservers -listen 127.0.0.1:8080 http://127.0.0.1:8081 http://127.0.0.1:8082
