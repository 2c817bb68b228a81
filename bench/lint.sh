#!/usr/bin/env bash
# `leakhound lint` against ESLint with eslint-plugin-listeners, side by side on the same
# files: express, koa, fastify, ws and socket.io with all their dependencies, installed
# from npm into a scratch folder (not in the repository).
#
#   bash bench/lint.sh [path/to/leakhound]      # default: target/release/leakhound
#   RUNS=3 WORK=/tmp/leakhound-lint-bench bash bench/lint.sh
#
# Prints per tool: files, wall seconds (median of RUNS), files/s and peak RSS, then the
# ratio; and leakhound's findings over the whole tree (JSON in $WORK/lint.json) for the
# false-positive review in bench/RESULTS.md. Needs node, npm and GNU time.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "${1:-$here/target/release/leakhound}")"
work="${WORK:-/tmp/leakhound-lint-bench}"
runs="${RUNS:-3}"
mkdir -p "$work/tree" "$work/tools"

if [ ! -d "$work/tree/node_modules/express" ]; then
  (cd "$work/tree" && npm init -y >/dev/null && npm install --no-audit --no-fund express@5 koa@3 fastify@5 ws@8 socket.io@4 >/dev/null)
fi
if [ ! -d "$work/tools/node_modules/eslint-plugin-listeners" ]; then
  (cd "$work/tools" && npm init -y >/dev/null && npm install --no-audit --no-fund -E eslint@10.16.0 eslint-plugin-listeners@1.6.0 >/dev/null)
fi
# ESLint lints only files under its config's folder: the config goes beside the tree, and
# imports the plugin from the tools folder; node_modules is un-ignored (it is the tree).
cat > "$work/eslint.config.mjs" <<CFG
import listeners from '$work/tools/node_modules/eslint-plugin-listeners/lib/index.js';
const rules = {
  'listeners/no-missing-remove-event-listener': 'warn',
  'listeners/matching-remove-event-listener': 'warn',
  'listeners/no-inline-function-event-listener': 'warn',
};
export default [
  { ignores: ['!**/node_modules/'] },
  { files: ['**/*.js', '**/*.cjs'], plugins: { listeners }, rules,
    languageOptions: { ecmaVersion: 'latest', sourceType: 'commonjs' } },
  { files: ['**/*.mjs'], plugins: { listeners }, rules,
    languageOptions: { ecmaVersion: 'latest', sourceType: 'module' } },
];
CFG

# The same files for both: JavaScript (ESLint's default parser reads no TypeScript), no
# minified bundles (leakhound's walk skips them).
cd "$work/tree"
find node_modules -type f \( -name '*.js' -o -name '*.cjs' -o -name '*.mjs' \) ! -name '*.min.js' | sort > "$work/files.txt"
nfiles=$(wc -l < "$work/files.txt")
nlines=$(xargs cat < "$work/files.txt" | wc -l)
echo "files: $nfiles JavaScript files, $nlines lines (node $(node --version), $(nproc) cores)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # name, command...
  local name=$1; shift
  : > "$work/$name.times"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' -o "$work/$name.time1" "$@" > "$work/$name.out" 2> "$work/$name.err" || true
    # GNU time says "Command exited with non-zero status N" first when it did (lint: 1 or 2).
    tail -n 1 "$work/$name.time1" >> "$work/$name.times"
  done
  local secs rss
  secs=$(awk '{print $1}' "$work/$name.times" | median)
  rss=$(awk '{print $2}' "$work/$name.times" | median)
  echo "$name $secs $rss"
}

# Both tools on one thread, then both on every core (leakhound's rayon pool, ESLint's
# --concurrency worker threads).
lh1=$(measure leakhound-1t "$bin" --threads 1 lint --include-deps --format json $(cat "$work/files.txt"))
es1=$(measure eslint-1t "$work/tools/node_modules/.bin/eslint" -c "$work/eslint.config.mjs" \
  --concurrency off --format json $(cat "$work/files.txt"))
lh=$(measure leakhound "$bin" lint --include-deps --format json $(cat "$work/files.txt"))
es=$(measure eslint "$work/tools/node_modules/.bin/eslint" -c "$work/eslint.config.mjs" \
  --concurrency "$(nproc)" --format json $(cat "$work/files.txt"))

printf '%-13s %8s %10s %10s %12s\n' tool files wall_s files_per_s peak_rss_MiB
for row in "$lh1" "$es1" "$lh" "$es"; do
  read -r name secs rss <<< "$row"
  awk -v n="$name" -v f="$nfiles" -v s="$secs" -v r="$rss" 'BEGIN {printf "%-13s %8d %10.2f %10.0f %12.0f\n", n, f, s, f/s, r/1024}'
done
read -r _ l1 _ <<< "$lh1"
read -r _ e1 _ <<< "$es1"
read -r _ ln _ <<< "$lh"
read -r _ en _ <<< "$es"
awk -v a="$l1" -v b="$e1" -v c="$ln" -v d="$en" \
  'BEGIN {printf "files/s ratio leakhound/eslint: %.1fx on one thread, %.1fx on all cores\n", b/a, d/c}'
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
let w = 0, e = 0, fatal = 0, ignored = 0;
for (const f of r) {
  w += f.warningCount; e += f.errorCount; fatal += f.fatalErrorCount || 0;
  ignored += f.messages.filter((m) => /ignored/.test(m.message)).length;
}
console.log(`eslint-plugin-listeners: ${w} warnings, ${e} errors (${fatal} files it could not parse), ${ignored} files ignored`);' "$work/eslint.out"

# leakhound over the whole tree as a user runs it (walk included, TypeScript too).
"$bin" lint --include-deps --format json . > "$work/lint.json" || true
node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1]));
console.log(`leakhound lint --include-deps .: ${d.files} files, ${d.lines} lines; ` +
  `${d.summary.warnings} warnings, ${d.summary.infos} infos, ${d.summary.file_errors} file errors`);
for (const f of d.findings) console.log(`  ${f.severity} ${f.rule} ${f.path}:${f.line}`);' "$work/lint.json"
