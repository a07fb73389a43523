#!/bin/sh
set -e
echo "hello from a tsbuild-built image"
for f in "$GREETING_DIR"/*.txt; do
  printf '%s: %s\n' "$(basename "$f" .txt)" "$(cat "$f")"
done
cd "$GREETING_DIR" && sha256sum -c SHA256SUMS >/dev/null && echo "checksums ok ($(wc -l < SHA256SUMS) files), running as $(id -un)"
