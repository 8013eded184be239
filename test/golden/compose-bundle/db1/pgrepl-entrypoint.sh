#!/bin/sh
# pgrepl: never two writable primaries, even when the restart policy brings this container back.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
# TLS: PostgreSQL reads only a key owned by its own user, so the mounted files are copied for it.
for f in /etc/pgrepl/tls/ca.crt /etc/pgrepl/tls/db1.crt /etc/pgrepl/tls/db1.key; do
  if [ ! -s "$f" ]; then echo "pgrepl: $f is missing: put the node's TLS files in ./tls (see README.md)" >&2; exit 78; fi
done
install -d -o postgres -g postgres -m 700 /var/lib/postgresql/tls
install -o postgres -g postgres -m 600 /etc/pgrepl/tls/ca.crt /etc/pgrepl/tls/db1.crt /etc/pgrepl/tls/db1.key /var/lib/postgresql/tls/
export PGSSLMODE=verify-full PGSSLROOTCERT=/var/lib/postgresql/tls/ca.crt
if [ -s "$PGDATA/PG_VERSION" ] && [ ! -e "$PGDATA/standby.signal" ] && [ -n "${PGREPL_PEERS:-}" ]; then
  for peer in $(echo "$PGREPL_PEERS" | tr ',' ' '); do
    host="${peer%:*}"; port="${peer##*:}"
    ro=$(PGPASSWORD="$POSTGRES_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -t -A -h "$host" -p "$port" -U "$POSTGRES_USER" -d postgres \
      -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)
    if [ "$ro" = f ]; then
      echo "pgrepl: $peer is already the primary, and this node would start as one: it was demoted." >&2
      echo "pgrepl: refusing to start; rejoin it as a replica of $peer (see README.md)." >&2
      exit 78
    fi
  done
fi
exec "${PGREPL_NEXT_ENTRYPOINT:-docker-entrypoint.sh}" "$@"
