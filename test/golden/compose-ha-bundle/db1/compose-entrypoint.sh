#!/bin/sh
# The entrypoint of both services of compose.yaml for db1 of cluster shop, in this
# folder (mounted at /bundle): installs it with its install.sh, unchanged (safe to run again), then
# runs what the unit of the service says, its ExecStart as its User, as systemd would:
# `compose-entrypoint.sh agent` or `compose-entrypoint.sh etcd`.
set -eu
cd "$(dirname "$0")"
case "${1:-}" in
  agent) unit=pgrepl-shop-agent.service ;;
  etcd) unit=pgrepl-shop-etcd.service ;;
  *) echo "usage: compose-entrypoint.sh agent|etcd" >&2; exit 2 ;;
esac
./install.sh
user=$(sed -n 's/^User=//p' "$unit")
command=$(sed -n 's/^ExecStart=//p' "$unit")
home=$(getent passwd "$user" | cut -d: -f6)
# The environment systemd gives a unit's User; the ExecStart lines hold no quotes.
exec env -i PATH="$PATH" HOME="$home" USER="$user" LOGNAME="$user" \
  setpriv --reuid="$user" --regid="$user" --init-groups -- $command
