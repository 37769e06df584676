#!/usr/bin/env bash
# The workspace's test command: makes sure PostgreSQL runs and Chromium with ChromeDriver
# is installed, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/ensure-postgres.sh
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
fi
# The browser tests drive Debian's Chromium through ChromeDriver.
scripts/ensure-browser.sh
cargo test --workspace "$@"
