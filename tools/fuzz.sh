#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS: tools/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#   TARGET: onnx_import text_ir plan_load checkpoint npy_npz idx amp_config tensor_file (or `all`,
#   one after another, SECONDS each). Builds the `fuzz` preset (clang-14, ASan + UBSan) when
#   needed; the corpus grows in build-fuzz/corpus/TARGET from the checked-in seeds (tests/fuzz/seeds), the
#   fixtures and the bad-input corpus (tests/bad_inputs); a crash, leak, timeout, out-of-memory or
#   sanitizer report fails the run and leaves the input in build-fuzz/artifacts/TARGET/.
# The last line printed is "fuzz TARGET: N runs in S s (R exec/s), OK|FAILED".
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(onnx_import text_ir plan_load checkpoint npy_npz idx amp_config tensor_file)
[ $# -ge 2 ] || { echo "usage: tools/fuzz.sh TARGET|all SECONDS [libFuzzer flags]" >&2; exit 2; }
target=$1 seconds=$2
shift 2
if [ "$target" = all ]; then
  rc=0
  for t in "${TARGETS[@]}"; do "$0" "$t" "$seconds" "$@" || rc=1; done
  exit $rc
fi
printf '%s\n' "${TARGETS[@]}" | grep -qxF "$target" ||
  { echo "fuzz.sh: unknown target '$target' (one of ${TARGETS[*]})" >&2; exit 2; }

[ -f build-fuzz/build.ninja ] || cmake --preset fuzz >/dev/null
if ! built=$(cmake --build build-fuzz --target "${target}_fuzz" 2>&1); then
  printf '%s\n' "$built" | grep -E 'error|FAILED' | head -20 >&2 || true
  echo "fuzz $target: the target does not build, FAILED"
  exit 1
fi

# Seeds: the checked-in ones, then every fixture and bad input of the target's kind.
seeds=build-fuzz/seeds/$target
rm -rf "$seeds" && mkdir -p "$seeds" "build-fuzz/corpus/$target" "build-fuzz/artifacts/$target"
[ -d "tests/fuzz/seeds/$target" ] && cp tests/fuzz/seeds/"$target"/* "$seeds"/
add() { find "$@" -type f -size -2M -print0 2>/dev/null | xargs -0 -r cp -t "$seeds" --backup=numbered; }
case $target in
  onnx_import) add tests/fixtures tests/bad_inputs -name '*.onnx' ;;
  text_ir) add tests/lit tests/bad_inputs -name '*.test' -o -name '*.txt' ;;
  plan_load) add tests/bad_inputs -name '*.ampc' ;;
  npy_npz) add tests/fixtures tests/bad_inputs -name '*.npz' -o -name '*.npy' ;;
  idx) add tests/bad_inputs -name '*-ubyte*' -o -name '*.idx' ;;
  amp_config) add tests/bad_inputs -name '*.json' ;;
  tensor_file) add tests/fixtures tests/bad_inputs -name '*.pb' ;;
  checkpoint) ;;
esac

log=build-fuzz/artifacts/$target/last.log
# Each input is written to a file (the readers take paths): keep those writes in memory.
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=${TMPDIR:-/dev/shm}
start=$(date +%s)
set +e
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "build-fuzz/${target}_fuzz" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 \
  -max_len=$((1 << 17)) -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$target/" \
  "$@" "build-fuzz/corpus/$target" "$seeds" >"$log" 2>&1
rc=$?
set -e
elapsed=$(($(date +%s) - start))
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
runs=${runs:-0}
verdict=OK
if [ $rc -ne 0 ]; then
  verdict=FAILED
  grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 >&2 || true
fi
echo "fuzz $target: $runs runs in $elapsed s ($((runs / (elapsed > 0 ? elapsed : 1))) exec/s), $verdict"
[ $rc -eq 0 ]
