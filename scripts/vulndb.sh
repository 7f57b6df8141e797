#!/usr/bin/env bash
# Builds the offline Go vulnerability database that govulncheck reads with
# `-db file://DIR`, and prints DIR (an absolute path) on stdout.
#
# The database comes from the golang.org/x/vulndb module: its data/osv folder
# holds the OSV reports and its cmd/indexdb writes them out in the layout
# govulncheck expects (index/{db,modules,vulns}.json[.gz], ID/*.json[.gz]).
# The module proxy is the only way in on our machines, so this is also the only
# way to get a database there.
#
# The result is cached per vulndb version under
#   ${CUSTODIA_VULNDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/custodia/vulndb}/VERSION
# and reused on later runs. Building it the first time takes about a minute
# (most of it compiling indexdb, whose module pulls in many dependencies).
#
# To update the database, change VULNDB_VERSION below: it is pinned here and
# nowhere else.
set -euo pipefail

VULNDB_MODULE=golang.org/x/vulndb
VULNDB_VERSION=v0.0.0-20260813214354-9de686e1fb00

export PATH="/usr/local/go/bin:$PATH"

cache_root=${CUSTODIA_VULNDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/custodia/vulndb}
mkdir -p "$cache_root"
cache_root=$(cd "$cache_root" && pwd -P)
db_dir="$cache_root/$VULNDB_VERSION"

# A database is complete only once the stamp is written, after indexdb
# succeeded and the directory was moved into place.
if [[ -f "$db_dir/.complete" && -f "$db_dir/index/db.json" ]]; then
	echo "$db_dir"
	exit 0
fi

log() { echo "vulndb: $*" >&2; }

tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "downloading $VULNDB_MODULE@$VULNDB_VERSION"
# Run outside any module or workspace so that neither the caller's go.mod nor
# go.work has a say in what is downloaded or built.
mod_dir=$(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$VULNDB_MODULE@$VULNDB_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z "$mod_dir" || ! -d "$mod_dir/data/osv" ]]; then
	log "could not find data/osv in the downloaded module (dir: '${mod_dir}')"
	exit 1
fi

log "building indexdb"
# Built inside the vulndb module itself, against its own go.mod and go.sum,
# so its (large) dependency set stays out of tools/go.mod.
(cd "$mod_dir" && GOWORK=off GOFLAGS=-mod=readonly go build -o "$tmp/indexdb" ./cmd/indexdb)

log "writing database"
"$tmp/indexdb" -vulns "$mod_dir/data/osv" -out "$tmp/db"
echo "$VULNDB_MODULE@$VULNDB_VERSION" >"$tmp/db/.complete"

# Another run may have finished first; either copy is as good as the other.
# A leftover without the stamp (someone deleted it) is replaced.
if [[ -d "$db_dir" && ! -f "$db_dir/.complete" ]]; then
	rm -rf "$db_dir"
fi
if ! mv -T "$tmp/db" "$db_dir" 2>/dev/null && [[ ! -f "$db_dir/.complete" ]]; then
	log "could not move the database into $db_dir"
	exit 1
fi
log "built $db_dir"
echo "$db_dir"
