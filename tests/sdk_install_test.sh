#!/usr/bin/env bash
# The plugin SDK end to end, as a researcher with only the installed framework
# meets it: install the SDK from this build to a temporary prefix, build
# examples/euler_maruyama and a freshly scaffolded plugin of every kind (from
# the installed template files) outside the tree against it and run their
# tests, run them on small experiments with the installed runner (the four
# scaffolds composed into one), and find them in `runner compare`.
#
# usage: sdk_install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/genfw-sdk-XXXXXX")
trap 'rm -rf "$work"' EXIT
# Tests never touch the user's cache: CTest names one (GENFW_CACHE_DIR), and HOME
# is a folder of this test's, in which no ~/.cache/genfw may appear.
: "${GENFW_CACHE_DIR:?set GENFW_CACHE_DIR: a test must not write the cache of the user, ~/.cache/genfw}"
export HOME="$work/home"
unset XDG_CACHE_HOME
mkdir -p "$HOME"
prefix=$work/prefix
runner=$prefix/bin/runner
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_in() {  # FILE TEXT: the FILE must contain TEXT
  grep -qF -- "$2" "$1" || { cat "$1"; fail "expected '$2' in $1"; }
}

step "install the SDK to $prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
test -x "$runner" && test -f "$prefix/lib/cmake/genfw/genfwConfig.cmake" || fail "incomplete install"

step "the SDK/host rule: plugins link the SDK alone, installed headers are the SDK's"
for header in registry config run run_log trainer pipeline scaffold images; do
  test ! -e "$prefix/include/genfw/$header.hpp" || fail "host header $header.hpp was installed with the SDK"
done
if grep -lE '#include [<"]genfw/(registry|config|run|run_log|trainer|pipeline|scaffold|images)\.hpp' \
     "$prefix"/include/genfw/*.hpp; then fail "an installed SDK header includes a host header"; fi
# Direct dependencies (ELF NEEDED): Debian's LibTorch itself drags HDF5 in
# through OpenCV and GDAL, so `ldd`'s transitive list cannot tell.
needed() { readelf -d "$1" | awk '/NEEDED/ {print $5}'; }
for library in "$prefix/lib/genfw/plugins/ddim.so" "$prefix"/lib/libgenfw_sdk.so.*.*.*; do
  needed "$library" > "$work/needed.txt"
  if grep -E 'hdf5|tomlplusplus|png|genfw_host' "$work/needed.txt"; then
    fail "$library links a host dependency (HDF5, TOML++, libpng or libgenfw_host)"
  fi
done
needed "$prefix/lib/genfw/plugins/ddim.so" > "$work/needed.txt"
expect_in "$work/needed.txt" "libgenfw_sdk.so"

step "scaffold a plugin of every kind with the installed runner, from the installed templates"
test -f "$prefix/lib/genfw/scaffold/CMakeLists.txt.in" || fail "the scaffold templates were not installed"
kinds=(sampler model objective metric)
for kind in "${kinds[@]}"; do "$runner" new "$kind" "my_$kind" --dir "$work"; done

# No precompiled header outside the tree: each torch source costs ~30-60 s,
# so the two projects' two sources each are built in parallel.
build_outside() {  # SOURCE_DIR BUILD_DIR
  cmake -S "$1" -B "$2" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; fail "configuring $1 against the installed SDK"; }
  cmake --build "$2" -j 2
  (cd "$2" && ctest --output-on-failure)
}
step "build and test examples/euler_maruyama against the installed SDK"
build_outside "$source/examples/euler_maruyama" "$work/euler_maruyama-build"
plugin_paths=(--plugin-path "$work/euler_maruyama-build/plugins")
for kind in "${kinds[@]}"; do
  step "build and test the scaffolded $kind against the installed SDK"
  build_outside "$work/my_$kind" "$work/my_$kind/build"
  plugin_paths+=(--plugin-path "$work/my_$kind/build/plugins")
done

step "the installed runner lists its installed built-ins and the new plugins"
"$runner" plugins "${plugin_paths[@]}" > "$work/plugins.txt"
expect_in "$work/plugins.txt" "$prefix/lib/genfw/plugins/annealed_langevin.so"
expect_in "$work/plugins.txt" "$work/euler_maruyama-build/plugins/euler_maruyama.so"
expect_in "$work/plugins.txt" "$work/my_sampler/build/plugins/my_sampler.so"
GENFW_PLUGIN_PATH="$work/my_sampler/build/plugins" "$runner" plugins > "$work/plugins-env.txt"
expect_in "$work/plugins-env.txt" "my_sampler.so"
"$runner" describe euler_maruyama "${plugin_paths[@]}" > "$work/describe.txt"
expect_in "$work/describe.txt" "sigma_max"

step "its options are validated like a built-in's"
if "$runner" "$source/examples/euler_maruyama/experiment.toml" "${plugin_paths[@]}" --set sampler.stpes=3 \
    --print-config > "$work/typo.txt" 2>&1; then
  fail "a misspelt option of an out-of-tree sampler was accepted"
fi
expect_in "$work/typo.txt" "did you mean 'steps'"

cd "$work"  # runs/ land here, the metrics' cache in $GENFW_CACHE_DIR
step "train the example experiment (small) and sample it with euler_maruyama"
small=(--set train.steps=300 --set sampler.num_samples=500 --set sampler.batch_size=500 --threads 2)
"$runner" "$source/examples/euler_maruyama/experiment.toml" "${plugin_paths[@]}" "${small[@]}" --out runs/em \
  | tee "$work/run-em.txt"
run_em=$(tail -n 1 "$work/run-em.txt")
test -f "$run_em" || fail "no run file from the example experiment"

step "sample the trained run with the scaffolded sampler and a built-in one"
run_my=$("$runner" sample "$run_em" --sampler my_sampler --set sampler.steps_per_level=20 "${plugin_paths[@]}" \
         --threads 2 --out runs/my | tail -n 1)
run_builtin=$("$runner" sample "$run_em" --sampler annealed_langevin --set sampler.steps_per_level=20 \
              "${plugin_paths[@]}" --threads 2 --out runs/builtin | tail -n 1)

step "the four scaffolds composed into one experiment: model, objective, sampler and metric"
cat > "$work/scaffolds.toml" << 'TOML'
name = "scaffolds"
seed = 1
[data]
plugin = "toy2d"
distribution = "gmm"
means = [[-2.0, 0.0], [2.0, 0.0]]
weights = [0.5, 0.5]
stds = [0.5]
size = 2000
[model]
plugin = "my_model"
[objective]
plugin = "my_objective"
[train]
steps = 200
batch_size = 128
[sampler]
plugin = "my_sampler"
steps_per_level = 20
num_samples = 500
batch_size = 500
[[metrics]]
plugin = "my_metric"
TOML
run_scaffolds=$("$runner" "$work/scaffolds.toml" "${plugin_paths[@]}" --threads 2 --out runs/scaffolds | tail -n 1)
test -f "$run_scaffolds" || fail "no run file from the experiment of the four scaffolds"

step "runner compare puts them all on one table"
"$runner" compare "$run_em" "$run_my" "$run_builtin" "$run_scaffolds" | tee "$work/compare.txt"
for column in euler_maruyama my_sampler annealed_langevin fid my_model my_objective my_metric; do
  expect_in "$work/compare.txt" "$column"
done
test ! -e "$HOME/.cache/genfw" || fail "the runner wrote the user's cache ($HOME/.cache/genfw)"
test -n "$(ls -A "$GENFW_CACHE_DIR" 2> /dev/null)" || fail "nothing was cached in GENFW_CACHE_DIR=$GENFW_CACHE_DIR"
echo "sdk install test passed"
