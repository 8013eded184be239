#!/bin/sh
# Run once by the image's entrypoint, on the first start of db1: the replication role and one
# physical slot per replica, so each replica has its slot before it clones. The password is read
# from the environment by psql (\getenv), not put on a command line.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv replication_password PGREPL_REPLICATION_PASSWORD
\getenv replication_user PGREPL_REPLICATION_USER
CREATE ROLE :"replication_user" WITH LOGIN REPLICATION PASSWORD :'replication_password';
SELECT pg_create_physical_replication_slot('db2', true);
SELECT pg_create_physical_replication_slot('db3', true);
SQL
