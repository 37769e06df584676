#!/usr/bin/env bash
# The workspace's test command: makes sure PostgreSQL runs, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/ensure-postgres.sh
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
fi
cargo test --workspace "$@"
