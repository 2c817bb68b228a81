#!/usr/bin/env bash
# stacks.sh [NAME ...]: the DevTools engine's allocation stacks of the corpus's *-tracked snapshots
# (default: node20-tracked node26-tracked), stored as NAME.stacks.json.gz for the parity test.
# Bundles stacks-driver.ts with the DevTools oracle's npm install (run ../shared/oracle/devtools/
# golden.sh once first: it installs chrome-devtools-frontend and esbuild into its cache).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${LEAKHOUND_ORACLE_CACHE:-$HOME/.cache/leakhound-devtools-oracle}"
[ -d "$cache/node_modules/chrome-devtools-frontend" ] || { echo "stacks.sh: no oracle install in $cache (run golden.sh once)" >&2; exit 2; }
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(node20-tracked node26-tracked)
tmp="$(mktemp -d "${TMPDIR:-/tmp}/leakhound-stacks.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$cache/src"
cp "$here/stacks-driver.ts" "$cache/src/stacks-driver.ts"
node -e '
  require(process.argv[1]).buildSync({
    entryPoints: [process.argv[2]], outfile: process.argv[3], bundle: true,
    platform: "node", format: "esm", target: "node18", logLevel: "error", legalComments: "none",
  });' "$cache/node_modules/esbuild" "$cache/src/stacks-driver.ts" "$tmp/stacks-driver.mjs"
for n in "${names[@]}"; do
  gzip -dc "$here/$n.heapsnapshot.gz" > "$tmp/$n.heapsnapshot"
  node --max-old-space-size=4096 "$tmp/stacks-driver.mjs" "$tmp/$n.heapsnapshot" > "$tmp/$n.stacks.json"
  gzip -9 -n -c "$tmp/$n.stacks.json" > "$here/$n.stacks.json.gz"
  echo "stacks.sh: $n: $(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).nodes.length)' "$tmp/$n.stacks.json") nodes with a stack" >&2
done
