#!/usr/bin/env bash
# Builds the libraries with the toolchain of the declared `rust-version`, so that the
# promise in Cargo.toml is checked rather than assumed. The toolchain must be
# installed (`rustup toolchain install <version>`); a missing one fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
versions = {p["rust_version"] for p in json.load(sys.stdin)["packages"] if p.get("rust_version")}
if len(versions) != 1:
    sys.exit(f"crates declare different rust-versions: {sorted(versions)}")
print(versions.pop())
')
toolchain=$(rustup toolchain list | awk '{print $1}' | grep -E "^${version//./\\.}(\.0)?-" | head -1 || true)
if [ -z "$toolchain" ]; then
  echo "rust-version $version is declared but no such toolchain is installed; run rustup toolchain install $version" >&2
  exit 1
fi
# When the default toolchain is that same compiler, every other CI step already
# builds with the declared version; a second build would prove nothing more.
if [ "$(rustc "+$toolchain" --version)" = "$(rustc --version)" ]; then
  echo "== the default toolchain is $(rustc --version): the declared rust-version $version builds every CI step"
  exit 0
fi
echo "== building the workspace with $toolchain (declared rust-version $version)"
cargo "+$toolchain" check --workspace --all-targets --quiet
