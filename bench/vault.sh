#!/usr/bin/env bash
# Whole-system benchmark of the Vault-compatible KV API: reads and writes of
# /v1/secret/data/... over HTTPS, 1 KiB secrets on 10,000 paths, 16 and 64
# concurrent clients, audit on (every read is a lease and an audit entry)
# and every acknowledged write fsynced; each path has its own password.
# SQLite; PostgreSQL too when BENCH_POSTGRES_URL names an empty database
# (psql must be installed: the script analyzes it after the fill).
# A last run mixes reads (48 clients) and writes (16) at once.
# Loopback only; every run is bounded by -d. Results go in
# docs/benchmarks.md.
#
# Usage: bench/vault.sh [seconds per run, default 15]
# BENCH_ENGINES="sqlite postgres" (the default) chooses the engines.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# One 1 KiB secret value (random letters and digits, so it is no second
# factor and no weak password).
secret=$(head -c 2048 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 1024)
printf '{"data":{"password":"%s-{i}"}}' "$secret" >"$work/secret.json"

run_engine() { # name, port, extra server flags...
	local name=$1 port=$2
	shift 2
	local data addr ca slug pat robot
	start_server "$name" "$port" "$@"
	new_tenant
	CUSTODIA_TOKEN=$pat
	# One owner: robot dual control off, so they may grant their own robot fetch.
	"$work/custodia" policy set --tenant "$slug" --robot-dual-control off >/dev/null
	robot=$("$work/custodia" robot create --tenant "$slug" --name payroll-bot -o json | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
	"$work/custodia" grant create --tenant "$slug" --subject payroll-bot --permission credentials.fetch --duration 24h \
		--reason "benchmark" >/dev/null
	local l="$work/load -cacert $ca -paths 10000"
	echo "== $name: fill 10,000 paths (PUT, 1 KiB, -c 64)"
	$l -url "$addr/v1/secret/data/bench/p{i}" -method PUT -body "$work/secret.json" -header "X-Vault-Token: $pat" \
		-c 64 -n 10000 -warmup 0 -d 5m
	if [[ $name == postgres ]]; then
		# Production PostgreSQL analyzes new tables on its own (autovacuum)
		# within a minute of the fill; this machine's server runs with
		# autovacuum off, and without statistics the planner picks the
		# wrong index for a name lookup (scanning every credential of the
		# tenant). Analyze once, as autovacuum would have.
		psql -q "$BENCH_POSTGRES_URL" -c ANALYZE
	fi
	for c in 16 64; do
		echo "== $name: GET /v1/secret/data/bench/p{i} as a robot (lease + audit per read), -c $c"
		$l -url "$addr/v1/secret/data/bench/p{i}" -header "X-Vault-Token: $robot" -header "X-Custodia-Purpose: benchmark" -c "$c" -d "${secs}s"
	done
	for c in 16 64; do
		echo "== $name: PUT /v1/secret/data/bench/p{i} (new version, fsynced), -c $c"
		$l -url "$addr/v1/secret/data/bench/p{i}" -method PUT -body "$work/secret.json" -header "X-Vault-Token: $pat" -c "$c" -d "${secs}s"
	done
	# Reads while writes go on: on PostgreSQL every write moves the change
	# stamp, so cached fetches are confirmed stale and run again.
	echo "== $name: mixed: GET as the robot -c 48 while PUT -c 16 (two load tools at once)"
	$l -url "$addr/v1/secret/data/bench/p{i}" -method PUT -body "$work/secret.json" -header "X-Vault-Token: $pat" -c 16 -d "${secs}s" >"$work/mixed-put.txt" &
	$l -url "$addr/v1/secret/data/bench/p{i}" -header "X-Vault-Token: $robot" -header "X-Custodia-Purpose: benchmark" -c 48 -d "${secs}s"
	wait %%
	cat "$work/mixed-put.txt"
	echo "== $name: server peak RSS"
	grep VmHWM "/proc/$(jobs -p | tail -1)/status" || true
	kill %% 2>/dev/null || true
	wait 2>/dev/null || true
}

if [[ ${BENCH_ENGINES:-sqlite postgres} == *sqlite* ]]; then
	run_engine sqlite 18520
fi
if [[ -n "${BENCH_POSTGRES_URL:-}" && ${BENCH_ENGINES:-sqlite postgres} == *postgres* ]]; then
	run_engine postgres 18521 --database-url "$BENCH_POSTGRES_URL"
fi
