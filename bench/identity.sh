#!/usr/bin/env bash
# Whole-system identity benchmarks: authorization with its database round
# trip (GET /api/v1/me and a tenant route with a personal token) and
# password sign-in throughput (POST /api/v1/auth/signin), on SQLite and,
# when BENCH_POSTGRES_URL is set, on PostgreSQL. Loopback only; every run
# is bounded by -d. Results go in docs/benchmarks.md.
#
# Usage: bench/identity.sh [seconds per run, default 15]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

run_engine() { # name, port, extra server flags...
	local name=$1 port=$2
	shift 2
	local data addr ca slug pat
	# Sign-ins come from one address here: lift the per-source limit (the
	# default 20 a minute would answer 429 almost at once).
	start_server "$name" "$port" --signin-per-source 10000 "$@"
	new_tenant
	printf '{"tenant":"%s","email":"o@%s.example","password":"%s"}' "$slug" "$slug" "$pw" >"$work/signin.json"

	echo "== $name: GET /api/v1/me (token lookup, subject, tenant, grants), -c 16"
	"$work/load" -url "$addr/api/v1/me" -header "Authorization: Bearer $pat" -cacert "$ca" -c 16 -d "${secs}s"
	echo "== $name: GET /api/v1/tenants/$slug/policy (tenant route: slug resolved, role checked), -c 16"
	"$work/load" -url "$addr/api/v1/tenants/$slug/policy" -header "Authorization: Bearer $pat" -cacert "$ca" -c 16 -d "${secs}s"
	echo "== $name: POST /api/v1/auth/signin (argon2id, default bound), -c 16"
	"$work/load" -url "$addr/api/v1/auth/signin" -method POST -body "$work/signin.json" -header "Content-Type: application/json" \
		-cacert "$ca" -c 16 -d "${secs}s" || true
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
