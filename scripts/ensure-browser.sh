#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver (packages chromium and chromium-driver)
# when /usr/bin/chromium or /usr/bin/chromedriver is missing. The browser tests in
# tests/ drive them through WebDriver and fail, rather than skip, without them.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "ensure-browser: chromium and chromedriver are installed" >&2
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
# apt's progress goes to a log that is shown only when the install fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${sudo[@]}" apt-get update -qq &&
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-browser: installing chromium and chromium-driver failed" >&2
  exit 1
fi
echo "ensure-browser: installed chromium and chromium-driver ($(/usr/bin/chromedriver --version | head -n 1))" >&2
