#!/usr/bin/env bash
# regen.sh [--check]: (re)builds or checks leakhound's parity corpus in tests/corpus/.
#
#   tests/corpus/regen.sh           regenerate: run make.js into a temp dir, store each snapshot as
#                                   <name>.heapsnapshot.gz (gzip -9 -n), write manifest.json, run the
#                                   DevTools oracle on each manifest entry and store its JSON as
#                                   <name>.golden.json.gz, then check the facts each file should show
#   tests/corpus/regen.sh --check   do NOT regenerate: decompress the stored snapshots, re-run the
#                                   oracle with each entry's stored `oracle_args` and compare with the
#                                   stored golden byte for byte, except `engine.node`; exit 1 naming
#                                   every golden that differs
#
# Entries made by make-producers.sh (snapshots of other node versions, Deno, Bun, Chromium; they
# have a `producer` field) are not remade here: regenerating keeps their snapshots and entries
# and re-runs the oracle on them; --check checks them like the others.
#
# The oracle is <shared>/oracle/devtools/golden.sh, where <shared> is $LEAKHOUND_SHARED or else the
# `shared` folder beside the repository root. Needs node, gzip, and (first oracle run) the npm registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="${LEAKHOUND_SHARED:-$here/../../../shared}"
golden="$(cd "$shared/oracle/devtools" 2>/dev/null && pwd)/golden.sh" || true
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
[ -x "$golden" ] || { echo "regen.sh: oracle not found at $shared/oracle/devtools/golden.sh (set LEAKHOUND_SHARED)" >&2; exit 2; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/leakhound-corpus.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
snap="$tmp/snap"; mkdir -p "$snap" "$tmp/golden"

if [ "$check" = 0 ]; then
  node "$here/make.js" "$snap"
  node "$here/tool.js" manifest "$snap" "$here/manifest.json" > "$tmp/manifest.json"
  keep=" $(node "$here/tool.js" producer-files "$here/manifest.json" | tr '\n' ' ') "
  for f in "$here"/*.heapsnapshot.gz "$here"/*.golden.json.gz; do
    if [ -e "$f" ] && [[ "$keep" != *" $(basename "$f") "* ]]; then rm -f "$f"; fi
  done
  for f in "$snap"/*.heapsnapshot; do gzip -9 -n -c "$f" > "$here/$(basename "$f").gz"; done
  mv "$tmp/manifest.json" "$here/manifest.json"
  # the other producers' snapshots, for their oracle jobs
  for f in $keep; do
    case "$f" in *.heapsnapshot.gz) gzip -dc "$here/$f" > "$snap/${f%.gz}" ;; esac
  done
else
  [ -f "$here/manifest.json" ] || { echo "regen.sh: no $here/manifest.json" >&2; exit 2; }
  while read -r f; do
    gzip -dc "$here/$f" > "$snap/${f%.gz}"
  done < <(node "$here/tool.js" snapshots "$here/manifest.json")
fi

# `engine.node` is the only machine-dependent field; blank it before comparing.
normalize() { sed -E '/^"engine":/s/"node":"[^"]*"/"node":""/'; }

failed=()
while IFS=$'\t' read -r -a job; do
  name="${job[0]}"; args=("${job[@]:1}")
  echo "oracle: $name <- ${args[*]}" >&2
  if ! (cd "$snap" && "$golden" --out "$tmp/out.json" "${args[@]}"); then
    echo "regen.sh: oracle failed for $name" >&2; failed+=("$name (oracle failed)"); continue
  fi
  if [ "$check" = 0 ]; then
    gzip -9 -n -c "$tmp/out.json" > "$here/$name"
  elif [ ! -f "$here/$name" ]; then
    failed+=("$name (missing)")
  elif ! cmp -s <(gzip -dc "$here/$name" | normalize) <(normalize < "$tmp/out.json"); then
    echo "regen.sh: MISMATCH $name" >&2
    diff <(gzip -dc "$here/$name" | normalize | cut -c1-300) <(normalize < "$tmp/out.json" | cut -c1-300) | head -20 >&2 || true
    failed+=("$name")
  fi
done < <(node "$here/tool.js" jobs "$here/manifest.json")

if [ ${#failed[@]} -gt 0 ]; then
  printf 'regen.sh: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
[ "$check" = 1 ] || node "$here/tool.js" verify "$here/manifest.json" "$here"
echo "regen.sh: $([ "$check" = 1 ] && echo "checked" || echo "regenerated") $(node "$here/tool.js" jobs "$here/manifest.json" | wc -l) goldens in $here" >&2
