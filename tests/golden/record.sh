#!/usr/bin/env bash
# Records the outputs in cases.txt with a leakhound binary (default: the release build):
#   bash tests/golden/record.sh [path/to/leakhound]
# Each case's stdout, then a line `exit N`, is stored gzipped (-n: no name or time) as
# out/NAME.out.gz. Only record with a binary whose outputs you mean to keep.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(realpath "${1:-$here/../../target/release/leakhound}")"
cd "$here"
# Outputs must not depend on whether the snapshots' source files exist on this machine.
export LEAKHOUND_NO_LINT=1
mkdir -p out
grep -v '^#' cases.txt | while IFS=$'\t' read -r name args; do
  [ -n "$name" ] || continue
  set +e
  # shellcheck disable=SC2086
  stdout="$("$bin" --quiet $args)"
  code=$?
  set -e
  printf '%s\nexit %s\n' "$stdout" "$code" | gzip -9 -n > "out/$name.out.gz"
done
echo "recorded $(ls out | wc -l) outputs in $here/out"
