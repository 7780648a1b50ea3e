#!/usr/bin/env bash
# Build the SeaweedFS S3 server the object-storage tests run against, once per version, and print
# the binary's path. SeaweedFS's go.mod has a replace directive, so `go install module@version` is
# refused: the module is downloaded from the Go module proxy, copied out of the read-only module
# cache, and built in place. Cold: ~10-15 min and ~4 GB of Go caches on a 2-core machine.
# The binary is cached under ${XDG_CACHE_HOME:-~/.cache}/giellm-batch/seaweedfs/<version>/weed.
set -euo pipefail
MODULE=github.com/seaweedfs/seaweedfs
VERSION=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/giellm-batch/seaweedfs/$VERSION
BIN=$CACHE/weed
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build_seaweedfs: Go is needed to build the test S3 server (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
# `go mod download -json` prints the module's folder in the module cache ("Dir").
DIR=$(cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$DIR" "$WORK/src"
chmod -R u+w "$WORK/src"
(cd "$WORK/src" && go build -ldflags='-s -w' -o "$WORK/weed" ./weed) >&2
mv "$WORK/weed" "$BIN"  # rename within one folder: a concurrent or killed build never leaves half a binary
echo "$BIN"
