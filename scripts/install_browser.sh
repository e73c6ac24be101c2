#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for the real-browser listening-test tests, when possible.
# Never fails: without root or apt the browser tests skip and say why. Quiet unless it installs something.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: chromium/chromedriver missing and cannot be installed here (needs root and apt-get);" \
       "the real-browser tests will be skipped" >&2
  exit 0
fi
echo "browser: installing Debian chromium and chromium-driver (for the real-browser tests)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium chromium-driver \
       >/dev/null; }; then
  echo "browser: apt-get could not install chromium; the real-browser tests will be skipped" >&2
fi
exit 0
