# fuzz/fuzz.mk - libFuzzer harnesses, and their corpora replayed under any
# compiler. Included by the Makefile (-include fuzz/fuzz.mk); see
# fuzz/README.md.
#
#   fuzz          fuzz/fuzz_*.c as libFuzzer programs in $(FUZZ_BUILD)/
#                 (clang, -fsanitize=fuzzer,address,undefined), the library
#                 built beside them with -fsanitize=address,undefined,
#                 fuzzer-no-link; nothing of the other configurations is
#                 touched
#   fuzz-replay   the same harness sources linked with fuzz/replay.c (a
#                 plain main) against $(LIB_A) of the current configuration
#                 (CC, SELECTOR, SANITIZER...), run over fuzz/corpus/<name>/;
#                 no libFuzzer needed (VALGRIND=1 runs it under valgrind).
#                 Fails if any input fails.
#   test-fuzz     the same as fuzz-replay, named for make test to call
#   fuzz-deps     make sure clang's libFuzzer runtime is there (installs
#                 libclang-rt-14-dev or the like when run as root)
#
# Options: FUZZ_CC (default clang), FUZZ_BUILD (default build/fuzz),
# FUZZ_CFLAGS (default -O1 -g).

FUZZ_CC ?= clang
FUZZ_BUILD ?= build/fuzz
FUZZ_CFLAGS ?= -O1 -g
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_ALL_CFLAGS = $(strip -std=c11 -Wall -Wextra -Wpedantic $(if $(filter 1,$(WERROR)),-Werror) \
                  -pthread $(FUZZ_SAN) $(FUZZ_CFLAGS))

FUZZ_NAMES := $(patsubst fuzz/%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB_A := $(FUZZ_BUILD)/libcoro.a
FUZZ_HARNESS_OBJS := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/obj/fuzz/%.o)
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/%)
FUZZ_STAMP := $(FUZZ_BUILD)/.flags
FUZZ_FLAGS_LINE = $(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_ALL_CFLAGS)

# Each replay program under a time limit (TEST_TIMEOUT, as the tests).
FUZZ_TIMEOUT_CMD := $(if $(shell command -v timeout 2>/dev/null),timeout $(or $(TEST_TIMEOUT),120))

# The replay programs of the current configuration ($(BUILD) and its flags).
REPLAY_OBJS := $(FUZZ_NAMES:%=$(BUILD)/obj/fuzz/%.o) $(BUILD)/obj/fuzz/replay.o
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/%)

.PHONY: fuzz fuzz-deps fuzz-replay fuzz-replay-bins test-fuzz

fuzz: fuzz-deps $(FUZZ_BINS)

# libFuzzer comes with clang's compiler-rt: on Debian and Ubuntu the
# libclang-rt-N-dev package (clang 14: libclang-rt-14-dev).
fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { \
	    echo "make fuzz: $(FUZZ_CC) is missing: run 'sudo apt-get install -y clang' (or set FUZZ_CC)" >&2; \
	    exit 1; }
	@tmp=$$(mktemp -d); \
	printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > $$tmp/t.c; \
	if $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $$tmp/t $$tmp/t.c >/dev/null 2>&1; then \
	    rm -rf $$tmp; exit 0; fi; \
	ver=$$($(FUZZ_CC) -dumpversion 2>/dev/null | cut -d. -f1); \
	pkg=libclang-rt-$${ver:-14}-dev; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "libFuzzer is missing: installing $$pkg"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y $$pkg || { rm -rf $$tmp; exit 1; }; \
	    $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $$tmp/t $$tmp/t.c || { \
	        echo "make fuzz: $(FUZZ_CC) -fsanitize=fuzzer still fails after installing $$pkg" >&2; \
	        rm -rf $$tmp; exit 1; }; \
	else \
	    echo "make fuzz: $(FUZZ_CC) cannot link -fsanitize=fuzzer (libFuzzer is missing):" \
	         "run 'sudo apt-get install -y $$pkg' and try again" >&2; \
	    rm -rf $$tmp; exit 1; \
	fi; \
	rm -rf $$tmp

$(FUZZ_STAMP): FORCE
	@mkdir -p $(@D)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FUZZ_FLAGS_LINE)' ]; then \
	    printf '%s\n' '$(FUZZ_FLAGS_LINE)' > $@; fi

# The library: instrumented for coverage (fuzzer-no-link), not linked with
# libFuzzer's main.
$(FUZZ_LIB_OBJS): $(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_STAMP) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c -o $@ $<

$(FUZZ_LIB_A): $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $(FUZZ_LIB_OBJS)

$(FUZZ_HARNESS_OBJS): $(FUZZ_BUILD)/obj/fuzz/%.o: fuzz/%.c $(FUZZ_STAMP) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c -o $@ $<

$(FUZZ_BINS): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/fuzz/%.o $(FUZZ_LIB_A)
	$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_A) $(CORO_LDLIBS)

# ---- replay: any compiler, the current configuration ----

$(REPLAY_BINS): $(BUILD)/fuzz-replay/%: $(BUILD)/obj/fuzz/%.o $(BUILD)/obj/fuzz/replay.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/obj/fuzz/replay.o $(LIB_A) $(ALL_LDLIBS)

fuzz-replay-bins: $(REPLAY_BINS)

fuzz-replay: fuzz-replay-bins
	@echo "== fuzz corpora replayed: $(CONFIG_DESC) ($(BUILD))"
	@failed=; \
	for name in $(FUZZ_NAMES); do \
	    CORO_SELECTOR=$(SELECTOR) $(FUZZ_TIMEOUT_CMD) $(TEST_RUNNER) ./$(BUILD)/fuzz-replay/$$name fuzz/corpus/$$name || \
	        failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "== fuzz-replay FAILED:$$failed"; exit 1; fi

test-fuzz: fuzz-replay

.SECONDARY: $(REPLAY_OBJS) $(FUZZ_LIB_OBJS) $(FUZZ_HARNESS_OBJS)

-include $(REPLAY_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_HARNESS_OBJS:.o=.d)
