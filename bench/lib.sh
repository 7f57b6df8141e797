# Shared by the whole-system bench scripts; source it as
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# It builds the server and the load tool into $work (removed on exit, with
# every server still running), sets secs (the first argument, default 15)
# and pw, and defines start_server and new_tenant.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
secs=${1:-15}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build ${BENCH_TAGS:+-tags "$BENCH_TAGS"} -o "$work/custodia" ./cmd/custodia
go build -o "$work/load" ./bench/load
pw="plum Vortex harbour 93 quietly"

# start_server NAME PORT [server flags...] starts a --dev server on
# loopback with its data in $work/data-NAME and waits until it is ready.
# It sets data, addr and ca (declare them local in the caller), and
# exports CUSTODIA_ADDR, CUSTODIA_CA_CERT and CUSTODIA_TOKEN (the
# operator's).
start_server() {
	local name=$1 port=$2
	shift 2
	data="$work/data-$name"
	"$work/custodia" server --dev --data "$data" --listen "127.0.0.1:$port" --log-level warn "$@" 2>"$work/server-$name.log" &
	addr="https://127.0.0.1:$port" ca="$data/tls/cert.pem"
	export CUSTODIA_ADDR=$addr CUSTODIA_CA_CERT=$ca CUSTODIA_TOKEN
	for _ in $(seq 100); do
		curl -sfk "$addr/readyz" >/dev/null 2>&1 && break
		sleep 0.2
	done
	CUSTODIA_TOKEN=$(cat "$data/dev-operator-token")
}

# new_tenant creates a tenant whose owner (o@SLUG.example, password $pw)
# signs in and makes a personal token. It sets slug and pat (declare them
# local in the caller); CUSTODIA_TOKEN is then the owner's session.
new_tenant() {
	slug="bench$RANDOM"
	"$work/custodia" tenant create --slug "$slug" --name Bench >/dev/null
	local invite
	invite=$("$work/custodia" tenant invite-owner "$slug" --email "o@$slug.example" | sed -n 's/.*Invitation token: \([^ ]*\).*/\1/p')
	echo "$pw" | "$work/custodia" member accept "$invite" --password-stdin >/dev/null
	CUSTODIA_TOKEN=$(echo "$pw" | "$work/custodia" login --tenant "$slug" --email "o@$slug.example" --password-stdin 2>/dev/null)
	pat=$("$work/custodia" token create --name bench 2>/dev/null | grep -o 'cust_pat_[A-Za-z0-9_-]*' | head -1)
}
