#!/usr/bin/env bash
# The libFuzzer run (docs/reliability.md): builds the targets with Clang and
# ASan in BUILD/fuzz-build and runs each for a few thousand deterministic
# inputs (-runs=N -seed=1). Exits 77 where Clang or its libFuzzer runtime is
# missing. The test suite's fuzz_smoke_* tests run the GCC replay drivers instead.
#   fuzz/smoke.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1/fuzz-build
source=$2
clang=$(command -v clang++ || true)
if [[ -z $clang ]] || ! "$clang" -print-file-name=libclang_rt.fuzzer-x86_64.a | grep -q /; then
  echo "skipped: clang++ with libFuzzer is not installed (apt-get install clang)"
  exit 77
fi
# The readers' plugins and a few that the experiment seeds name.
filter='dataset/(fashion_mnist|cifar10|toy2d)|model/score_mlp|objective/dsm|sampler/annealed_langevin'
cmake -S "$source" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$clang" \
  -DGENFW_FUZZ=ON -DBUILD_TESTING=OFF "-DGENFW_PLUGIN_FILTER=$filter" >/dev/null
cmake --build "$build" --target fuzz_experiment_config fuzz_idx_reader fuzz_cifar10_batch fuzz_run_file fuzz_checkpoint
# compare reads each run file in a child process; libhdf5 loops forever on some
# corrupt files, and each such input costs this limit.
export ASAN_OPTIONS=detect_leaks=0 OMP_NUM_THREADS=1 GENFW_COMPARE_SECONDS_PER_FILE=3
for target in experiment_config idx_reader cifar10_batch run_file checkpoint; do
  # libFuzzer writes new inputs into the first corpus folder: give it a scratch copy.
  work=$build/fuzz/corpus-$target
  rm -rf "$work" && mkdir -p "$work"
  log=$build/fuzz/$target.log
  runs=${GENFW_FUZZ_SMOKE_RUNS:-2000}
  [[ $target == run_file ]] && runs=$((runs / 10))  # a process per input: about 10 times slower
  if ! "$build/fuzz/fuzz_$target" -runs="$runs" -seed=1 -timeout=60 "$work" "$source/fuzz/corpus/$target" \
      >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz_$target: FINDING (the input is in $build, crash-* / see the log above)"
    exit 1
  fi
  echo "fuzz_$target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1) ($(grep -E '^Done [0-9]+ runs' "$log"))"
done
