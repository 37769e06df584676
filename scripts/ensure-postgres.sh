#!/usr/bin/env bash
# Starts the local PostgreSQL cluster when it is not accepting connections, then waits for it.
set -euo pipefail
host=127.0.0.1
port=5432
if pg_isready -h "$host" -p "$port" -q 2>/dev/null; then
  exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "starting PostgreSQL..." >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi
for _ in $(seq 1 60); do
  if pg_isready -h "$host" -p "$port" -q 2>/dev/null; then
    exit 0
  fi
  sleep 1
done
echo "PostgreSQL is not accepting connections on $host:$port; start it, or set DATABASE_URL to a server that is" >&2
exit 1
