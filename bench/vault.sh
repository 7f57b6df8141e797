#!/usr/bin/env bash
# Whole-system benchmark of the Vault-compatible KV API: reads and writes of
# /v1/secret/data/... over HTTPS, 1 KiB secrets on 10,000 paths, 16 and 64
# concurrent clients, audit on (every read is a lease and an audit entry)
# and every acknowledged write fsynced; each path has its own password.
# SQLite; PostgreSQL too when BENCH_POSTGRES_URL names an empty database
# (psql must be installed: the script analyzes it after the fill).
# Loopback only; every run is bounded by -d. Results go in
# docs/benchmarks.md.
#
# Usage: bench/vault.sh [seconds per run, default 15]
# BENCH_ENGINES="sqlite postgres" (the default) chooses the engines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
secs=${1:-15}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/custodia" ./cmd/custodia
go build -o "$work/load" ./bench/load
pw="plum Vortex harbour 93 quietly"
# One 1 KiB secret value (random letters and digits, so it is no second
# factor and no weak password).
secret=$(head -c 2048 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 1024)
printf '{"data":{"password":"%s-{i}"}}' "$secret" >"$work/secret.json"

run_engine() { # name, port, extra server flags...
	local name=$1 port=$2
	shift 2
	local data="$work/data-$name"
	"$work/custodia" server --dev --data "$data" --listen "127.0.0.1:$port" --log-level warn "$@" 2>"$work/server-$name.log" &
	local addr="https://127.0.0.1:$port" ca="$data/tls/cert.pem"
	export CUSTODIA_ADDR=$addr CUSTODIA_CA_CERT=$ca
	for _ in $(seq 100); do
		curl -sfk "$addr/readyz" >/dev/null 2>&1 && break
		sleep 0.2
	done
	export CUSTODIA_TOKEN
	CUSTODIA_TOKEN=$(cat "$data/dev-operator-token")
	local slug="bench$RANDOM"
	"$work/custodia" tenant create --slug "$slug" --name Bench >/dev/null
	local invite
	invite=$("$work/custodia" tenant invite-owner "$slug" --email "o@$slug.example" | sed -n 's/.*Invitation token: \([^ ]*\).*/\1/p')
	echo "$pw" | "$work/custodia" member accept "$invite" --password-stdin >/dev/null
	CUSTODIA_TOKEN=$(echo "$pw" | "$work/custodia" login --tenant "$slug" --email "o@$slug.example" --password-stdin 2>/dev/null)
	local pat robot
	pat=$("$work/custodia" token create --name bench 2>/dev/null | grep -o 'cust_pat_[A-Za-z0-9_-]*' | head -1)
	CUSTODIA_TOKEN=$pat
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
