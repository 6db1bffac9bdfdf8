#!/usr/bin/env bash
# One TLS stack in what the Lambdas ship: rustls on aws-lc-rs, once. Fails when ring,
# OpenSSL/native-tls or a second version of rustls or aws-lc-rs enters the functions'
# dependency tree (their normal dependencies, on every target).
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree -p stepsync-functions -e normal --target all --prefix none --format '{p}' 2>/dev/null | sed 's/ (.*//' | sort -u)
status=0
for banned in ring openssl-sys native-tls; do
  if grep -qE "^${banned} v" <<<"$tree"; then
    echo "check-deps: ${banned} is in the functions' dependency tree; keep one TLS stack (rustls + aws-lc-rs)" >&2
    cargo tree -p stepsync-functions -e normal --target all -i "$banned" >&2 || true
    status=1
  fi
done
for single in rustls aws-lc-rs aws-lc-sys; do
  versions=$(grep -cE "^${single} v" <<<"$tree" || true)
  if [ "$versions" -gt 1 ]; then
    echo "check-deps: ${versions} versions of ${single}:" >&2
    grep -E "^${single} v" <<<"$tree" >&2
    status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "check-deps: one TLS stack ($(grep -E '^rustls v' <<<"$tree"), $(grep -E '^aws-lc-rs v' <<<"$tree"))"
fi
exit "$status"
