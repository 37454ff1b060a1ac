# A thin wrapper over CMake. `make demo` and `make test` are the two commands a new user needs.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CTEST_JOBS ?= $(JOBS)
DATA ?=

.PHONY: all deps deps-test build test test-release test-asan demo bench clean

all: build

deps:
	@bash scripts/install-deps.sh build

deps-test:
	@bash scripts/install-deps.sh test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# The whole suite, then the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: deps-test
	$(MAKE) test-release
	$(MAKE) test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(CTEST_JOBS)

test-asan: deps-test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCNK_SANITIZE=ON -DCMAKE_C_FLAGS_DEBUG="-O1 -g"
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j$(CTEST_JOBS)

demo: build
	./$(BUILD)/cnnkit demo $(if $(DATA),--data "$(DATA)")

bench: build
	@bash scripts/install-deps.sh bench
	bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
