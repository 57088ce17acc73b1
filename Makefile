# genfw: `make run` runs the main job, `make test` the whole test suite.
# Both install the Debian packages they need first (as root) via `make deps`.
BUILD ?= build
JOBS ?= $(shell nproc)
PACKAGES = cmake ninja-build g++ libtorch-dev libboost-dev libboost-program-options-dev libhdf5-dev libgloo-dev \
  hdf5-tools libtomlplusplus-dev libgtest-dev zlib1g-dev libpng-dev libopenblas0-pthread dataset-fashion-mnist

.PHONY: deps configure build test run bench install clean

deps:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && OMP_NUM_THREADS=2 GOMP_SPINCOUNT=1000 ctest --output-on-failure -j 2

# The main job: five families on Fashion-MNIST, one table (runs/benchmark_fashion/).
run: build
	$(BUILD)/runner experiments/benchmark_fashion.toml

# genfw against a bare LibTorch loop and Python PyTorch (bench/README.md): bench/results.md.
bench: configure
	cmake -S . -B $(BUILD) -DGENFW_BUILD_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)
	@dpkg -s python3-torch >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch)
	python3 bench/run.py --build $(BUILD)

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX),)

clean:
	rm -rf $(BUILD)
