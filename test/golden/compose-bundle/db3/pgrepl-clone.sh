#!/bin/sh
# pgrepl: clone db1 into $PGDATA through slot db3 (pg_basebackup -X stream -R -S db3).
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"; chown postgres "$PGDATA"; chmod 700 "$PGDATA"
  exec su-exec postgres "$0" "$@"
fi
if [ -e "$PGDATA/PG_VERSION" ]; then echo "$PGDATA already holds a database; nothing to do"; exit 0; fi
umask 077
pass=$(mktemp); trap 'rm -f "$pass"' EXIT
# libpq passfile fields escape ':' and '\'
esc() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g'; }
printf '*:*:replication:%s:%s\n' "$(esc "$PGREPL_REPLICATION_USER")" "$(esc "$PGREPL_REPLICATION_PASSWORD")" > "$pass"
if ! pg_basebackup -D "$PGDATA" -d "host=10.0.0.11 port=5432 user=$PGREPL_REPLICATION_USER passfile=$pass application_name=db3 sslmode=verify-full sslrootcert=/etc/pgrepl/tls/ca.crt" \
    -X stream -R -S db3 --checkpoint=fast --progress; then
  find "$PGDATA" -mindepth 1 -delete
  echo "pgrepl: the clone failed; ./data was emptied, run clone.sh again" >&2
  exit 1
fi
# primary_conninfo and primary_slot_name come from this node's postgresql.conf, not from -R.
sed -i -e '/^primary_conninfo/d' -e '/^primary_slot_name/d' "$PGDATA/postgresql.auto.conf"
cp "$pass" "$PGDATA/pgrepl-replication.pgpass"
echo "pgrepl: db3 cloned from db1; start it with docker compose up -d"
