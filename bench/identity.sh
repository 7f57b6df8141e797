#!/usr/bin/env bash
# Whole-system identity benchmarks: authorization with its database round
# trip (GET /api/v1/me and a tenant route with a personal token) and
# password sign-in throughput (POST /api/v1/auth/signin), on SQLite and,
# when BENCH_POSTGRES_URL is set, on PostgreSQL. Loopback only; every run
# is bounded by -d. Results go in docs/benchmarks.md.
#
# Usage: bench/identity.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
secs=${1:-15}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/custodia" ./cmd/custodia
go build -o "$work/load" ./bench/load
pw="plum Vortex harbour 93 quietly"

run_engine() { # name, extra server flags...
	local name=$1 port=$2
	shift 2
	local data="$work/data-$name"
	# Sign-ins come from one address here: lift the per-source limit (the
	# default 20 a minute would answer 429 almost at once).
	"$work/custodia" server --dev --data "$data" --listen "127.0.0.1:$port" --log-level warn \
		--signin-per-source 10000 "$@" 2>"$work/server-$name.log" &
	local addr="https://127.0.0.1:$port"
	export CUSTODIA_ADDR=$addr CUSTODIA_CA_CERT="$data/tls/cert.pem"
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
	local pat
	pat=$("$work/custodia" token create --name bench 2>/dev/null | grep -o 'cust_pat_[A-Za-z0-9_-]*' | head -1)
	printf '{"tenant":"%s","email":"o@%s.example","password":"%s"}' "$slug" "$slug" "$pw" >"$work/signin.json"

	echo "== $name: GET /api/v1/me (token lookup, subject, tenant, grants), -c 16"
	"$work/load" -url "$addr/api/v1/me" -header "Authorization: Bearer $pat" -cacert "$data/tls/cert.pem" -c 16 -d "${secs}s"
	echo "== $name: GET /api/v1/tenants/$slug/policy (tenant route: slug resolved, role checked), -c 16"
	"$work/load" -url "$addr/api/v1/tenants/$slug/policy" -header "Authorization: Bearer $pat" -cacert "$data/tls/cert.pem" -c 16 -d "${secs}s"
	echo "== $name: POST /api/v1/auth/signin (argon2id, default bound), -c 16"
	"$work/load" -url "$addr/api/v1/auth/signin" -method POST -body "$work/signin.json" -header "Content-Type: application/json" \
		-cacert "$data/tls/cert.pem" -c 16 -d "${secs}s" || true
	echo "== $name: server peak RSS"
	grep VmHWM "/proc/$(jobs -p | tail -1)/status" || true
	kill %% 2>/dev/null || true
	wait 2>/dev/null || true
}

run_engine sqlite 18510
if [[ -n "${BENCH_POSTGRES_URL:-}" ]]; then
	# The database must be empty: --dev initializes it with a new root key.
	run_engine postgres 18511 --database-url "$BENCH_POSTGRES_URL"
fi
