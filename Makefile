# A thin wrapper over CMake. `make demo` and `make test` are the two commands a new user needs.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
VALGRIND_BUILD ?= build-valgrind
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
JOBS ?= $(shell nproc)
CTEST_JOBS ?= $(JOBS)
DATA ?=

.PHONY: all deps deps-test build test test-release test-asan test-valgrind fuzz demo bench clean

all: build

deps:
	@bash scripts/install-deps.sh build

deps-test:
	@bash scripts/install-deps.sh test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# The whole suite, then the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer, then a
# small end-to-end run under Valgrind, then every libFuzzer harness for 30 s (9 harnesses: 4.5 minutes).
test: deps-test
	$(MAKE) test-release
	$(MAKE) test-asan
	$(MAKE) test-valgrind
	$(MAKE) fuzz FUZZ_SECONDS=30

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(CTEST_JOBS)

test-asan: deps-test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCNK_SANITIZE=ON -DCMAKE_C_FLAGS_DEBUG="-O1 -g"
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j$(CTEST_JOBS)

# Valgrind memcheck (tests/test_valgrind.sh) from a portable build: Valgrind cannot execute the AVX-512 code
# that -march=native may emit. Only cnnkit is built; the test itself is a shell script.
test-valgrind: deps-test
	cmake -S . -B $(VALGRIND_BUILD) -DCNK_NATIVE=OFF -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g"
	cmake --build $(VALGRIND_BUILD) -j$(JOBS) --target cnnkit
	cd $(VALGRIND_BUILD) && ctest -R '^test_valgrind$$' --output-on-failure

# libFuzzer harnesses (fuzz/fuzz_*.c, clang + ASan/UBSan) in their own build dir, each run for FUZZ_SECONDS
# (FUZZ_TARGETS="csv cfg" to pick some). Findings land in $(FUZZ_BUILD)/fuzz-artifacts/ and fail the target.
fuzz: deps-test
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCNK_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_C_FLAGS_DEBUG="-O1 -g"
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target cnk_fuzzers
	bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

demo: build
	./$(BUILD)/cnnkit demo $(if $(DATA),--data "$(DATA)")

bench: build
	@bash scripts/install-deps.sh bench
	bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(VALGRIND_BUILD)
