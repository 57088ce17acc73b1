# genfw: `make run` runs the main job, `make test` the whole test suite.
# Both install the Debian packages they need first (as root) via `make deps`.
#
# TORCH picks the LibTorch genfw builds against (docs/libtorch.md):
#   TORCH=debian  Debian's libtorch-dev 1.13 (CPU), in build/        (the default)
#   TORCH=pip     the LibTorch inside PyPI's torch wheel (2.x, CUDA-enabled),
#                 installed into a virtual environment $(BUILD)/venv, in build-pip/
TORCH ?= debian
ifeq ($(TORCH),pip)
BUILD ?= build-pip
else ifeq ($(TORCH),debian)
BUILD ?= build
else
$(error TORCH=$(TORCH): expected TORCH=debian (Debian's LibTorch 1.13) or TORCH=pip (PyPI's torch wheel))
endif
JOBS ?= $(shell nproc)
# CTEST_ARGS narrows a test run, e.g. CTEST_ARGS='-L "framework|plugin"'; CMAKE_ARGS adds configure options.
CTEST_ARGS ?=
CMAKE_ARGS ?=
PACKAGES = cmake ninja-build g++ libtorch-dev libboost-dev libboost-program-options-dev libhdf5-dev libgloo-dev \
  hdf5-tools libtomlplusplus-dev libgtest-dev zlib1g-dev libpng-dev libopenblas0-pthread dataset-fashion-mnist \
  python3-venv python3-h5py python3-matplotlib
# The torch wheel a TORCH=pip build uses (the version tested; any 2.x wheel with C++ headers works).
TORCH_PIP_SPEC ?= torch==2.15.0
VENV = $(BUILD)/venv
# The wheel's own folder (lib/, include/, share/cmake/Torch): as CMAKE_PREFIX_PATH it is searched before
# the system's lib folder, so Debian's libtorch.so, if installed too, is never picked up by mistake.
TORCH_PREFIX = $$($(VENV)/bin/python -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')
# The wheel is CUDA-enabled: build its device code for the GPUs genfw is checked on (H100: 9.0) unless told.
TORCH_CUDA_ARCH_LIST ?= 9.0
CMAKE_TORCH_ARGS = $(if $(filter pip,$(TORCH)),-DCMAKE_PREFIX_PATH=$(TORCH_PREFIX) -DTORCH_CUDA_ARCH_LIST=$(TORCH_CUDA_ARCH_LIST),)

.PHONY: deps torch configure build test run bench install clean

deps:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# TORCH=pip: the wheel (and numpy, without which torch's Python warns) in $(VENV), unless that version is there.
# (Checked from the package metadata: importing torch with its CUDA libraries takes seconds.)
torch: deps
ifeq ($(TORCH),pip)
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/python -c 'import importlib.metadata as m, importlib.util as u, sys; \
	  sys.exit(u.find_spec("numpy") is None or m.version("torch").split("+")[0] != "$(TORCH_PIP_SPEC)".split("==")[-1])' \
	  2>/dev/null || (echo "installing $(TORCH_PIP_SPEC) into $(VENV)" && \
	  $(VENV)/bin/pip install -q --disable-pip-version-check "$(TORCH_PIP_SPEC)" numpy)
endif

configure: torch
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_TORCH_ARGS) $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && OMP_NUM_THREADS=2 GOMP_SPINCOUNT=1000 ctest --output-on-failure -j 2 $(CTEST_ARGS)

# The main job: five families on Fashion-MNIST, one table (runs/benchmark_fashion/).
run: build
	$(BUILD)/runner experiments/benchmark_fashion.toml

# genfw against a bare LibTorch loop and Python PyTorch (bench/README.md): bench/results.md.
bench: configure
	cmake -S . -B $(BUILD) -DGENFW_BUILD_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)
	@dpkg -s python3-torch >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch)
	python3 bench/run.py --build $(BUILD)

# Builds only what it installs (runner, SDK, host, built-in plugins), not the tests or fuzzers.
install: configure
	cmake --build $(BUILD) -j $(JOBS) --target installables
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX),)

clean:
	rm -rf $(BUILD)
