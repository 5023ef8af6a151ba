#!/bin/sh
# backup.sh: a logical backup of adshare's PostgreSQL database in pg_dump's
# custom format (compressed; pg_restore can restore it whole, or some
# tables, in parallel). See backups.md.
#
#	DATABASE_URL=postgres://… backup.sh [FILE]
#
# FILE defaults to adshare-<UTC time>.dump in the current directory. The
# dump is one consistent snapshot, taken while the server runs. It is
# written to FILE.partial, read back (its table of contents) and only then
# renamed, so that FILE is never a partial backup; FILE.sha256 holds its
# checksum, which restore.sh verifies. The path is printed on success.
#
# DATABASE_URL is read by libpq (pg_dump), not pgx: drop pgx-only
# parameters such as pool_max_conns; give a schema as
# options=-csearch_path%3D<schema> if need be (the whole database is
# dumped either way). pg_dump must be of the server's major version or
# newer.
set -eu

die() {
	echo "backup.sh: $*" >&2
	exit 1
}

[ -n "${DATABASE_URL:-}" ] || die "set DATABASE_URL to the database to back up"
command -v pg_dump >/dev/null 2>&1 || die "pg_dump not found: install the PostgreSQL client tools"
command -v pg_restore >/dev/null 2>&1 || die "pg_restore not found: install the PostgreSQL client tools"

file=${1:-adshare-$(date -u +%Y%m%dT%H%M%SZ).dump}
partial="$file.partial"
[ ! -e "$file" ] || die "$file exists: not overwriting a backup"
trap 'rm -f "$partial"' EXIT INT TERM

# --lock-wait-timeout: fail rather than queue behind a migration's lock
# (every query that arrived after the dump would queue behind it too).
pg_dump --format=custom --compress=6 --lock-wait-timeout=60s \
	--file="$partial" --dbname="$DATABASE_URL"
pg_restore --list "$partial" >/dev/null || die "the dump does not read back"
if command -v sha256sum >/dev/null 2>&1; then
	(cd "$(dirname "$partial")" && sha256sum "$(basename "$partial")") |
		sed "s/\.partial\$//" >"$file.sha256"
fi
mv "$partial" "$file"
trap - EXIT INT TERM
echo "$file"
