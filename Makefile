# cloudfs: the front door.  `make check` installs what it needs, builds
# everything and runs every test; `make demo` shows the main job.
# Executables end up in build/bin/.

FUZZ_SECONDS ?= 60

.PHONY: all deps build qemu check demo bench clean

all: build

deps:
	@scripts/install-deps.sh

build/main/build.ninja: | deps
	meson setup build/main

build/asan/build.ninja: | deps
	meson setup build/asan -Db_sanitize=address,undefined -Db_lundef=false

build/fuzz/build.ninja: | deps
	CC=clang meson setup build/fuzz -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

build: deps build/main/build.ninja
	ninja -C build/main
	@mkdir -p build/bin
	@ln -sf ../main/tools/cloudfs build/bin/cloudfs

# QEMU 10.0.2 with the cloudfs drivers: fetched, patched and built by
# scripts/build-qemu.sh (incremental after the first time)
qemu: deps
	scripts/build-qemu.sh

check: build qemu build/asan/build.ninja build/fuzz/build.ninja
	ninja -C build/asan
	meson configure build/fuzz -Dfuzz_seconds=$(FUZZ_SECONDS)
	ninja -C build/fuzz
	scripts/run-tests.sh

demo: build qemu
	scripts/demo.sh

# cloudfs against qcow2 and raw on the same storage; rewrites
# docs/performance.rst (bench/run.py --smoke for a quick pass)
bench: build qemu
	scripts/install-deps.sh bench
	/usr/bin/python3 bench/run.py --doc

clean:
	rm -rf build/main build/asan build/fuzz build/bin
