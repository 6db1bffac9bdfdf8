#!/usr/bin/env bash
# Installs what the console's browser test (tests/browser.rs) needs: Debian's Chromium and,
# in tests/browser/, playwright-core at the version package-lock.json pins (no browser
# download: it drives /usr/bin/chromium). Node.js and npm come from Debian too when missing.
# Re-running is cheap: each part installs only when it is missing or the lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-browser: installing ${missing[*]} from Debian's packages..." >&2
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

dir=tests/browser
stamp="$dir/node_modules/.package-lock.sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup-browser: installing playwright-core into $dir/node_modules..." >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
echo "setup-browser: $(chromium --version 2>/dev/null | head -1), node $(node --version)" >&2
