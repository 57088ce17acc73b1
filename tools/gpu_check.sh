#!/usr/bin/env bash
# The GPU check (docs/libtorch.md): build genfw against the PyTorch of a GPU machine
# that reaches no package registry, run the test suite there, and write bench/gpu.md.
#
#   tools/gpu_check.sh --prepare          # here, with the registries: the bundle of what that
#                                          # machine lacks -> build-gpu/bundle (under 60 MiB)
#   tools/gpu_check.sh                     # there: build, test on device = "cuda", bench/gpu.md
#   tools/gpu_check.sh --device cpu --dry-run   # the same steps on a CPU, tiny sizes, to check it
#
# Options: --device cuda|cpu (default cuda), --dry-run, --python PATH (a Python with torch;
# default: python3), --jobs N (default: cores), --skip-tests, --out FILE (default bench/gpu.md;
# build-gpu/gpu-dry-run.md for a dry run). Everything it makes lives under build-gpu/ (git
# ignores it); when $OUT is set (the device tool), the table and logs are copied there too.
#
# Sized for one H100 in under 8 minutes: build (~3 min on 16 cores), the framework,
# plugin and CUDA tests (~2 min), the bench (~3 min).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/build-gpu
BUNDLE=$WORK/bundle
DEVICE=cuda DRY_RUN=0 PREPARE=0 SKIP_TESTS=0 PYTHON=${PYTHON:-python3} JOBS=$(nproc) OUT_FILE=""

# The Debian packages genfw builds against that a PyTorch machine lacks (bookworm's):
# headers and the few shared libraries they link. Boost.DLL is header-only.
DEBS="libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libhdf5-hl-cpp-100 libsz2 libaec0 hdf5-helpers
  libtomlplusplus-dev libtomlplusplus3 libboost1.74-dev libboost-program-options1.74-dev
  libboost-program-options1.74.0 libgtest-dev libpng-dev libpng16-16 zlib1g-dev zlib1g libgloo-dev"

while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) PREPARE=1 ;;
    --device) DEVICE=$2; shift ;;
    --dry-run) DRY_RUN=1 ;;
    --python) PYTHON=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --skip-tests) SKIP_TESTS=1 ;;
    --out) OUT_FILE=$2; shift ;;
    *) echo "gpu_check: unknown option '$1' (see the head of $0)" >&2; exit 2 ;;
  esac
  shift
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check: --device is cuda or cpu, not '$DEVICE'" >&2; exit 2 ;; esac
say() { echo "gpu_check [$(date +%H:%M:%S)]: $*"; }

if [ "$PREPARE" = 1 ]; then
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/debs" "$BUNDLE/wheels"
  # (apt's note that root downloads unsandboxed into a folder its _apt user cannot write is left out.)
  (cd "$BUNDLE/debs" && apt-get download $DEBS 2>&1 | grep -v -e "^Get:" -e "unsandboxed" || true)
  # cmake and ninja as PyPI wheels (manylinux: they run on any recent glibc), for a machine without them.
  pip download -q --no-deps --only-binary=:all: -d "$BUNDLE/wheels" cmake ninja
  size=$(du -sm "$BUNDLE" | cut -f1)
  say "bundle: $(ls "$BUNDLE/debs" | wc -l) .deb files, $(ls "$BUNDLE/wheels" | wc -l) wheels, $size MiB in $BUNDLE"
  [ "$size" -lt 60 ] || { say "the bundle is $size MiB, over the 60 MiB it must fit in"; exit 1; }
  exit 0
fi

[ -d "$BUNDLE/debs" ] || { echo "gpu_check: no bundle in $BUNDLE; run tools/gpu_check.sh --prepare first (with the registries)" >&2; exit 1; }
if [ "$DRY_RUN" = 1 ]; then OUT_FILE=${OUT_FILE:-$WORK/gpu-dry-run.md}; else OUT_FILE=${OUT_FILE:-$ROOT/bench/gpu.md}; fi
LOGS=$WORK/logs
mkdir -p "$LOGS"
finish() {  # whatever happened, what there is goes back through the device tool's $OUT
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    cp -r "$LOGS" "$OUT/" 2>/dev/null || true
    [ -f "$OUT_FILE" ] && cp "$OUT_FILE" "$OUT/" || true
  fi
}
trap finish EXIT

# 1. The machine's PyTorch: the LibTorch genfw builds against.
TORCH_DIR=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) \
  || { echo "gpu_check: $PYTHON has no torch; pass --python PATH" >&2; exit 1; }
say "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "GPU:", torch.cuda.is_available())' 2>/dev/null) in $TORCH_DIR"
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  echo "gpu_check: --device cuda, but this PyTorch sees no GPU (use --device cpu --dry-run to check the script)" >&2
  exit 1
fi

# 2. The bundle's packages unpacked into a prefix (no root, no dpkg database touched).
PREFIX=$WORK/prefix
rm -rf "$PREFIX" && mkdir -p "$PREFIX"
for deb in "$BUNDLE"/debs/*.deb; do
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$deb" "$PREFIX"
  else (cd "$PREFIX" && ar p "$deb" "$(ar t "$deb" | grep '^data.tar')" | tar -x -J -f - 2>/dev/null \
        || ar p "$deb" "$(ar t "$deb" | grep '^data.tar')" | tar -x -f -); fi
done
LIBDIR=$PREFIX/usr/lib/x86_64-linux-gnu
# Debian's development symlinks point at absolute /usr paths in places: repoint them into the prefix.
find "$PREFIX" -type l | while read -r link; do
  target=$(readlink "$link")
  case "$target" in /usr/*|/lib/*) [ -e "$PREFIX$target" ] && ln -sfn "$PREFIX$target" "$link" ;; esac
done
outside=$(find "$PREFIX/usr/lib" -type l -lname '/*' ! -lname "$PREFIX/*")
if [ -n "$outside" ]; then  # a library that would resolve only on this machine: a package missing from the bundle
  say "links in the prefix that point outside it:"; echo "$outside" | sed 's/^/    /'
  [ "$DRY_RUN" = 0 ] || exit 1
fi
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/hdf5/serial${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
say "unpacked $(ls "$BUNDLE"/debs/*.deb | wc -l) packages into $PREFIX"

# 3. cmake and ninja: the machine's, else the bundle's wheels (a wheel is a zip file).
TOOLS=$WORK/tools
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
  rm -rf "$TOOLS" && mkdir -p "$TOOLS"
  for wheel in "$BUNDLE"/wheels/*.whl; do "$PYTHON" -m zipfile -e "$wheel" "$TOOLS"; done
  chmod +x "$TOOLS"/cmake/data/bin/* "$TOOLS"/ninja/data/bin/* 2>/dev/null || true
  export PATH=$TOOLS/cmake/data/bin:$TOOLS/ninja/data/bin:$PATH
fi
say "$(cmake --version | head -1), ninja $(ninja --version), $(c++ --version | head -1)"

# 4. Configure against the machine's LibTorch and the prefix; say where each dependency came from.
BUILD=$WORK/build
GPU_ARCH=$("$PYTHON" -c 'import torch; c = torch.cuda.get_device_capability() if torch.cuda.is_available() else (9, 0); print(f"{c[0]}.{c[1]}")' 2>/dev/null)
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGENFW_BUILD_BENCH=ON \
  -DCMAKE_PREFIX_PATH="$TORCH_DIR;$PREFIX/usr;$LIBDIR/cmake" -DCMAKE_FIND_ROOT_PATH="$PREFIX" \
  -DHDF5_ROOT="$LIBDIR/hdf5/serial" -DHDF5_C_COMPILER_EXECUTABLE= -DHDF5_CXX_COMPILER_EXECUTABLE= \
  -DBoost_ROOT="$PREFIX/usr" -DBoost_NO_SYSTEM_PATHS=ON -DTORCH_CUDA_ARCH_LIST="$GPU_ARCH" \
  >"$LOGS/configure.log" 2>&1 || { tail -40 "$LOGS/configure.log"; exit 1; }
for key in TORCH_LIBRARY HDF5_CXX_INCLUDE_DIR HDF5_hdf5_cpp_LIBRARY_RELEASE Boost_DIR tomlplusplus_DIR GTest_DIR PNG_LIBRARY_RELEASE; do
  value=$(grep -E "^$key:" "$BUILD/CMakeCache.txt" | cut -d= -f2- || true)
  say "  $key = ${value:-(not set)}"
  if [ "$DRY_RUN" = 1 ] && [ -n "$value" ] && [ "$key" != TORCH_LIBRARY ]; then
    case "$value" in "$PREFIX"*) ;; *) say "  $key comes from outside the prefix: the bundle is incomplete"; exit 1 ;; esac
  fi
done

# 5. Build.
say "building with $JOBS jobs (log: $LOGS/build.log)"
start=$SECONDS
cmake --build "$BUILD" -j "$JOBS" >"$LOGS/build.log" 2>&1 || { grep -E "error|Error" "$LOGS/build.log" | head -40; exit 1; }
say "built in $((SECONDS - start)) s"

# 6. Tests: the framework, plugin and CUDA tests (the CUDA ones skip, saying why, without a GPU).
if [ "$SKIP_TESTS" = 0 ]; then
  say "testing (log: $LOGS/tests.log)"
  start=$SECONDS
  (cd "$BUILD" && GENFW_TEST_DEVICE=$DEVICE OMP_NUM_THREADS=2 ctest -j "$JOBS" -L "framework|plugin" \
     --output-on-failure --timeout 600) >"$LOGS/tests.log" 2>&1 || tests_failed=1
  grep -E "tests passed|tests failed" "$LOGS/tests.log" | tail -1 | sed "s/^/gpu_check: /"
  grep -E "SKIPPED|no CUDA" "$LOGS/tests.log" | head -5 || true
  say "tested in $((SECONDS - start)) s"
  [ "${tests_failed:-0}" = 0 ] || { grep -E "\(Failed\)|\(Timeout\)|\(SEGFAULT\)" "$LOGS/tests.log" | head -20; say "tests failed; the bench still runs"; }
fi

# 7. The bench: bench/gpu.md (build-gpu/gpu-dry-run.md for a dry run).
say "bench (log: $LOGS/bench.log)"
start=$SECONDS
"$PYTHON" bench/gpu_bench.py --build "$BUILD" --device "$DEVICE" --out "$OUT_FILE" \
  $([ "$DRY_RUN" = 1 ] && echo --dry-run) 2>"$LOGS/bench.log" || { tail -30 "$LOGS/bench.log"; exit 1; }
say "bench in $((SECONDS - start)) s: $OUT_FILE"
[ "${tests_failed:-0}" = 0 ]
