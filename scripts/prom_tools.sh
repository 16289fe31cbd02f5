#!/usr/bin/env sh
# Unpacks promtool and amtool from Debian's prometheus and prometheus-alertmanager packages into $1 (no root:
# apt-get download plus dpkg-deb -x). Exits 0 even when it cannot: the tests that need the tools then skip
# with a reason, so a machine without apt still runs the rest of the suite.
set -u
dest=$1; shift
if [ -x "$dest/usr/bin/promtool" ] && [ -x "$dest/usr/bin/amtool" ]; then
  touch "$dest/.ready"; exit 0
fi
for tool in apt-get dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "prom-tools: $tool not found; promtool/amtool tests will skip (install the tools or put them on PATH)"
    exit 0
  fi
done
mkdir -p "$dest/debs"
if ! (cd "$dest/debs" && apt-get download "$@" >download.log 2>&1); then
  echo "prom-tools: apt-get download $* failed (no package lists? run apt-get update); promtool/amtool tests will skip:"
  tail -n 3 "$dest/debs/download.log"
  exit 0
fi
for deb in "$dest"/debs/*.deb; do
  dpkg-deb -x "$deb" "$dest" || { echo "prom-tools: could not unpack $deb; the tests will skip"; exit 0; }
done
rm -rf "$dest/debs"
"$dest/usr/bin/promtool" --version 2>&1 | head -n 1
"$dest/usr/bin/amtool" --version 2>&1 | head -n 1
touch "$dest/.ready"
