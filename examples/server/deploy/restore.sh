#!/bin/sh
# restore.sh: restores a backup.sh dump into a fresh, empty database. See
# backups.md.
#
#	createdb -T template0 adshare_restored
#	DATABASE_URL=postgres://…/adshare_restored restore.sh FILE
#
# It refuses a database that holds any table, view or sequence (restoring
# over live data would mix the two), checks FILE against FILE.sha256 when
# there is one, restores in one transaction (all or nothing), and analyzes
# the tables, whose planner statistics a dump does not carry. Objects are
# owned by the user of DATABASE_URL (--no-owner) and no GRANTs are
# replayed (--no-privileges): grant the server's role what it needs.
#
# DATABASE_URL is read by libpq, as in backup.sh.
set -eu

die() {
	echo "restore.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: DATABASE_URL=postgres://…/fresh_database restore.sh FILE"
file=$1
[ -n "${DATABASE_URL:-}" ] || die "set DATABASE_URL to the fresh database to restore into"
[ -f "$file" ] || die "$file: no such file"
for tool in pg_restore psql; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: install the PostgreSQL client tools"
done

if [ -f "$file.sha256" ] && command -v sha256sum >/dev/null 2>&1; then
	(cd "$(dirname "$file")" && sha256sum --check --status "$(basename "$file").sha256") ||
		die "$file does not match $file.sha256"
fi
pg_restore --list "$file" >/dev/null || die "$file is not a pg_dump custom-format archive"

objects=$(psql --no-psqlrc --quiet --tuples-only --no-align --dbname="$DATABASE_URL" --command="
	SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
	AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'")
[ "$objects" = 0 ] || die "the target database is not empty ($objects relations): restore into a fresh one (createdb -T template0)"

pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
	--dbname="$DATABASE_URL" "$file"
psql --no-psqlrc --quiet --dbname="$DATABASE_URL" --command="ANALYZE"
echo "restored $file"
