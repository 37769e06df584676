#!/usr/bin/env bash
# Builds each library crate with its default features, then with each of its features
# alone, so that a feature never compiles only because another one happens to be on.
set -euo pipefail
cd "$(dirname "$0")/.."
# Fails on any warning too: dead code under one feature is a sign of a wrong cfg.
check() {
  local output
  output=$(cargo check --quiet --message-format short "$@" 2>&1) || { echo "$output"; return 1; }
  if [ -n "$output" ]; then
    echo "$output"
    return 1
  fi
}
libraries=(tenancy-core supabase-mgmt tenant-migrate stripe-billing)
for crate in "${libraries[@]}"; do
  # `alone` features build alone; `with-default` ones (listed in the crate's
  # `[package.metadata.feature-check]`, for features that need a backend) build on
  # top of the default features.
  features=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
crate = sys.argv[1]
package = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == crate)
extra = ((package.get("metadata") or {}).get("feature-check") or {}).get("with-default", [])
alone = [f for f in package["features"] if f != "default" and f not in extra]
print(",".join(alone) or "-", ",".join(extra) or "-")
' "$crate")
  read -r alone with_default <<< "$features"
  echo "== $crate: default features"
  check -p "$crate" --lib
  for feature in ${alone//,/ }; do
    [ "$feature" = "-" ] && continue
    echo "== $crate: --features $feature"
    check -p "$crate" --no-default-features --features "$feature" --lib
  done
  for feature in ${with_default//,/ }; do
    [ "$feature" = "-" ] && continue
    echo "== $crate: default features and $feature"
    check -p "$crate" --features "$feature" --lib
    # And on each database backend alone, as a host with one engine builds it.
    for backend in sqlite postgres; do
      echo "== $crate: --features $backend,$feature"
      check -p "$crate" --no-default-features --features "$backend,$feature" --lib
    done
  done
done
