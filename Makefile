# coro - asyncio for C.  GNU make.
#
# Targets
#   all (default)  $(BUILD)/libcoro.a, $(BUILD)/libcoro.so and the examples
#   examples       every examples/*.c -> $(BUILD)/examples/NAME
#   demo           build the examples, then run $(BUILD)/examples/tour
#   test           check-deps, then the whole cmocka suite once per selector
#                  ($(SELECTOR) first, then poll), then test-docs,
#                  test-howitworks, test-pipeline, test-exports and test-fuzz
#                  (the fuzz corpora replayed), and test-kv (also under
#                  VALGRIND=1); one line per program, a final "N passed,
#                  N failed"; programs that passed before and were not
#                  rebuilt since are not rerun (AGAIN=1 reruns them; V=1
#                  prints every program's output)
#   test-build     what make test runs, built with its commands in a log
#                  ($(BUILD)/.build.log), shown on failure or warning
#   test-one       the suite for the current SELECTOR only
#   test-valgrind  test-one under valgrind (same as test-one VALGRIND=1)
#   test-c11       every library source builds with cc -std=c11 and no -D flag
#   test-none      the core and structure suites with SELECTOR=none (no fds)
#   test-arena     the core and structure suites in the heap-free mode (every
#                  loop on an arena, no allocator call), then test-nomalloc:
#                  a CORO_NO_MALLOC build's core objects reference no allocator
#   test-docs      compile every ```c block of README.md and docs/*.md, and
#                  run the ones that define main (scripts/docblocks.sh)
#   test-howitworks  docs/how-it-works.md is what make docs writes now (the
#                  page quotes the sources: a change there means make docs)
#   test-pipeline  examples/pipeline.c (inline `async with`) and
#                  pipeline_frames.c (a frame per body) print the same, and
#                  the first stays the shorter (scripts/pipeline.sh)
#   test-exports   libcoro.so exports the API and, of the internal coro__
#                  symbols, exactly those coro.h's macros call
#   test-kv        examples/kv_server against redis-server: every reply byte
#                  for byte (RESP, inline, redis-cli), malformed input,
#                  expiry, limits (scripts/kv_test.py; VALGRIND=1 runs the
#                  server under valgrind); the comparisons are skipped with a
#                  reason where redis-server is missing
#   bench          bench/*.c built with -O2 -DNDEBUG, no sanitizer, then
#                  bench/run.sh (results in bench/out/results.jsonl)
#   bench-net      the same with BENCH_SUITE=net (the network suite)
#   bench-build    build the benchmarks only
#   bench-bins     bench-build's step: the benchmarks in this configuration
#   bench-run      bench's step: bench-bins, then bench/run.sh $(BENCH_SUITE)
#   bench-check    the latest micro results against the aims (bench/run.sh check)
#   bench-docs     rewrite docs/benchmarks.md and its chart from the latest run
#   bench-instr    instructions per op of the micro rows, coro beside C++20,
#                  under callgrind (bench/instr.sh): not time, but the same on
#                  every run; ROWS="yield spawn" picks rows
#   docs           write docs/how-it-works.md from its template and the real
#                  sources: tour coroutines preprocessed and formatted, line
#                  numbers from the files (scripts/how-it-works.sh)
#   check-deps     make sure cmocka is there, and redis-server and redis-tools
#                  for test-kv (installs them when run as root)
#   amalgamation   build/coro.c, the library in one file; builds and runs hello
#   size           what coro costs: text at -Os and each object's RAM, here and
#                  on a Cortex-M3 (scripts/size.sh); size-docs writes them
#                  into docs/embedding.md
#   PLATFORM=cortex-m [test|size]
#                  the core for a Cortex-M3 (CM_CPU=cortex-m4 for an M4),
#                  its test image run under qemu-system-arm, its sizes
#                  (platform/cortex-m/README.md)
#   fuzz           libFuzzer harnesses in build/fuzz/ (clang); fuzz-replay replays
#                  fuzz/corpus/ under any CC; bash fuzz/run.sh fuzzes (fuzz/README.md)
#   install        coro.h (and its parts) to $(INCLUDEDIR), the libraries
#                  to $(LIBDIR), coro.pc to $(PKGCONFIGDIR)
#   uninstall      remove what install put there
#   clean          remove build/ and bench/out/
#   help           this list
#
# Options (on the command line: make test SANITIZER=address,undefined)
#   CC=clang            any C11 compiler (gcc and clang are tested)
#   SELECTOR=poll       force a backend: epoll, kqueue, poll or none (default:
#                       epoll on Linux, kqueue on macOS and the BSDs, else poll;
#                       none: no fds, the port's idle wait)
#   SANITIZER=a,b       -fsanitize=a,b on compile and link (not with VALGRIND)
#   LABELS=1            the labels-as-values resume form (-DCORO_LABELS)
#   NDEBUG=1            -DNDEBUG (what bench uses)
#   VALGRIND=1          run each test binary under valgrind (leaks are errors)
#   AGAIN=1             make test reruns every program, passed before or not
#   V=1                 make test prints every test program's full output
#   WERROR=0            warnings stay warnings
#   TEST_TIMEOUT=secs   per test binary (default 120, 900 under valgrind)
#   PREFIX=/usr/local   DESTDIR= for staged installs; LIBDIR, INCLUDEDIR,
#                       PKGCONFIGDIR
#
# Each configuration builds in its own directory, so switching CC, SELECTOR,
# SANITIZER, LABELS or NDEBUG never reuses stale objects: the default one
# (CC=cc, default selector, nothing else) is build/, the others are
# build/<cc>-<selector>[-san-...][-labels][-ndebug]/. A flags stamp in each
# directory rebuilds it when CFLAGS or the like change by other means.

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SUFFIXES:

VERSION := 0.1.0
MAJOR := $(firstword $(subst ., ,$(VERSION)))

UNAME_S := $(shell uname -s 2>/dev/null)
ifeq ($(UNAME_S),Linux)
DEFAULT_SELECTOR := epoll
else ifneq ($(filter Darwin FreeBSD OpenBSD NetBSD DragonFly,$(UNAME_S)),)
DEFAULT_SELECTOR := kqueue
else
DEFAULT_SELECTOR := poll
endif
SELECTOR ?= $(DEFAULT_SELECTOR)
ifeq ($(filter epoll kqueue poll none,$(SELECTOR)),)
$(error SELECTOR must be epoll, kqueue, poll or none, not '$(SELECTOR)')
endif

# Switches: empty or 0 is off, anything else is on.
override LABELS := $(filter-out 0,$(LABELS))
override NDEBUG := $(filter-out 0,$(NDEBUG))
override ARENA := $(filter-out 0,$(ARENA))
override NO_MALLOC := $(filter-out 0,$(NO_MALLOC))
override VALGRIND := $(filter-out 0,$(VALGRIND))

# ---- the build directory ---------------------------------------------------

comma := ,
CC_NAME := $(notdir $(lastword $(CC)))
ifneq ($(origin BUILD),command line)
ifeq ($(CC_NAME)|$(SELECTOR)|$(SANITIZER)$(LABELS)$(NDEBUG)$(ARENA)$(NO_MALLOC),cc|$(DEFAULT_SELECTOR)|)
BUILD := build
else
BUILD := build/$(CC_NAME)-$(SELECTOR)$(if $(SANITIZER),-san-$(subst $(comma),-,$(SANITIZER)))$(if $(LABELS),-labels)$(if $(NDEBUG),-ndebug)$(if $(ARENA),-arena)$(if $(NO_MALLOC),-nomalloc)
endif
endif

# ---- flags -------------------------------------------------------------------

# The project's own flags live in CORO_*; CPPFLAGS, CFLAGS, LDFLAGS and LDLIBS
# stay the user's (make CFLAGS=-O0 keeps -std=c11 and the warnings).
WERROR ?= 1
CFLAGS ?= -O2 -g
CORO_CPPFLAGS := -I. -D_GNU_SOURCE -D_DEFAULT_SOURCE
CORO_CFLAGS := -std=c11 -Wall -Wextra -Wpedantic $(if $(filter 1,$(WERROR)),-Werror) -fPIC -pthread
CORO_LDFLAGS :=
CORO_LDLIBS := -lpthread -lm
DEPFLAGS = -MMD -MP

ifneq ($(SANITIZER),)
ifneq ($(VALGRIND),)
$(error SANITIZER and VALGRIND do not mix: pick one)
endif
SAN_FLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
CORO_CFLAGS += $(SAN_FLAGS)
CORO_LDFLAGS += $(SAN_FLAGS)
endif
ifneq ($(LABELS),)
CORO_CPPFLAGS += -DCORO_LABELS
endif
ifneq ($(NDEBUG),)
CORO_CPPFLAGS += -DNDEBUG
endif
ifneq ($(NO_MALLOC),)
CORO_CPPFLAGS += -DCORO_NO_MALLOC
endif

ALL_CPPFLAGS = $(strip $(CORO_CPPFLAGS) $(CPPFLAGS))
ALL_CFLAGS = $(strip $(CORO_CFLAGS) $(CFLAGS))
ALL_LDFLAGS = $(strip $(CORO_LDFLAGS) $(LDFLAGS))
ALL_LDLIBS = $(strip $(LDLIBS) $(CORO_LDLIBS))

# The shared library: a soname, and on Linux no undefined symbols (a module
# missing from LIB_SRCS fails here, not in some program that links it later;
# sanitizer runtimes are left to the program) and libcoro.map's exports only
# (the API; internals stay hidden: scripts/exports.sh writes it). macOS links
# without the map.
ifeq ($(UNAME_S),Darwin)
SO_FLAGS := -Wl,-install_name,@rpath/libcoro.so.$(MAJOR)
else
SO_FLAGS := -Wl,-soname,libcoro.so.$(MAJOR) $(if $(SANITIZER),,-Wl,-z,defs) \
            -Wl,--version-script=$(BUILD)/libcoro.map
endif

HAVE_PKG_CONFIG := $(shell command -v pkg-config 2>/dev/null)
CMOCKA_CFLAGS ?= $(if $(HAVE_PKG_CONFIG),$(shell pkg-config --cflags cmocka 2>/dev/null))
CMOCKA_LIBS ?= $(or $(if $(HAVE_PKG_CONFIG),$(shell pkg-config --libs cmocka 2>/dev/null)),-lcmocka)

# ---- sources -----------------------------------------------------------------

# The library: an explicit list (add new modules here), plus one selector.
LIB_SRCS := errors.c mem.c arena.c loop.c report.c runner.c heap.c future.c task.c gen.c agen.c inspect.c waitq.c fd.c selectors/$(SELECTOR).c \
            platform/posix.c \
            $(wildcard sync.c queue.c group.c thread.c trace.c net.c stream.c server.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
# coro.h and the parts it includes (users include coro.h only)
PUBLIC_HEADERS := coro.h coro_impl.h coro_platform.h coro_sync.h coro_queue.h coro_group.h coro_thread.h coro_trace.h coro_net.h
LIB_A := $(BUILD)/libcoro.a
LIB_SO := $(BUILD)/libcoro.so

# Tests: each tests/test_*.c is one cmocka program; any other tests/*.c is a
# helper linked into every test.
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_HELPER_SRCS := $(filter-out $(TEST_SRCS),$(sort $(wildcard tests/*.c)))
# SELECTOR=none (no fds: a microcontroller's selector) runs the suites of the
# core and structure layers only; the hosted ones need sockets and signals.
NONE_TESTS := coro agen task future loop sync queue group with hotpath heapfree
ifeq ($(SELECTOR),none)
TEST_SRCS := $(filter $(NONE_TESTS:%=tests/test_%.c),$(TEST_SRCS))
endif
# ARENA=1 (make test-arena) runs the same suites with every loop in the
# heap-free mode (tests/helpers.h: an arena, and a hook that must not be called).
ifneq ($(ARENA),)
TEST_SRCS := $(filter $(NONE_TESTS:%=tests/test_%.c),$(TEST_SRCS))
endif
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)

EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
BENCH_SUITE ?= micro
BENCH_OUT := bench/out

ALL_OBJS := $(LIB_OBJS) $(TEST_OBJS) $(TEST_HELPER_OBJS) \
            $(EXAMPLE_SRCS:%.c=$(BUILD)/obj/%.o) $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)

PREFIX ?= /usr/local
INCLUDEDIR ?= $(PREFIX)/include
LIBDIR ?= $(PREFIX)/lib
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

# ---- running tests -------------------------------------------------------------

ifneq ($(VALGRIND),)
TEST_RUNNER := valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
               --error-exitcode=1 -q
TEST_TIMEOUT ?= 900
else
TEST_RUNNER :=
TEST_TIMEOUT ?= 120
endif
override AGAIN := $(filter-out 0,$(or $(AGAIN),$(FORCE)))
override V := $(filter-out 0,$(V))
# Pass stamps: per configuration (each has its own $(BUILD)); valgrind runs
# the default binaries, so its stamps are kept apart.
TEST_STAMPS := $(BUILD)/tests/.passed$(if $(VALGRIND),-valgrind)
TEST_LOGS := $(BUILD)/tests/.log$(if $(VALGRIND),-valgrind)
export ASAN_OPTIONS ?= detect_leaks=1
export UBSAN_OPTIONS ?= print_stacktrace=1
CONFIG_DESC = $(strip $(SELECTOR) selector, $(CC) $(if $(SANITIZER),-fsanitize=$(SANITIZER)) \
              $(if $(LABELS),labels-as-values) $(if $(NDEBUG),NDEBUG) $(if $(VALGRIND),valgrind))

# ---- targets -------------------------------------------------------------------

.PHONY: all amalgamation size size-docs examples demo test test-build test-one test-c11 test-none test-arena test-nomalloc test-valgrind test-docs test-howitworks test-pipeline test-exports test-kv check-deps bench bench-net \
        bench-build bench-bins bench-run bench-check bench-docs bench-instr bench-instr-run docs install uninstall clean help FORCE

all: $(LIB_A) $(LIB_SO) $(EXAMPLE_BINS)

examples: $(EXAMPLE_BINS)

# The flags stamp: rewritten only when the configuration changes, so every
# object and binary of $(BUILD) is rebuilt exactly then.
STAMP := $(BUILD)/.flags
FLAGS_LINE = $(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) | $(ALL_LDFLAGS) $(ALL_LDLIBS) $(SO_FLAGS) | $(CMOCKA_CFLAGS) $(CMOCKA_LIBS)
$(STAMP): FORCE
	@mkdir -p $(@D)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FLAGS_LINE)' ]; then \
	    printf '%s\n' '$(FLAGS_LINE)' > $@; fi

$(BUILD)/obj/%.o: %.c $(STAMP)
	@mkdir -p $(@D)
	$(CC) $(strip $(ALL_CPPFLAGS) $(EXTRA_CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS)) -c -o $@ $<

$(LIB_A): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(LIB_SO): $(LIB_OBJS) $(if $(filter Darwin,$(UNAME_S)),,$(BUILD)/libcoro.map)
	$(CC) $(strip -shared $(ALL_LDFLAGS) $(SO_FLAGS)) -o $@ $(LIB_OBJS) $(ALL_LDLIBS)

$(BUILD)/libcoro.map: $(LIB_OBJS) $(PUBLIC_HEADERS) scripts/exports.sh
	bash scripts/exports.sh map '$(PUBLIC_HEADERS)' $(LIB_OBJS) > $@

# tests: cmocka's headers, the helpers' headers; cmocka must be there first
$(TEST_OBJS) $(TEST_HELPER_OBJS): EXTRA_CPPFLAGS = $(CMOCKA_CFLAGS) -Itests $(if $(ARENA),-DCORO_TEST_ARENA)
$(TEST_OBJS) $(TEST_HELPER_OBJS): | check-deps

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPER_OBJS) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_HELPER_OBJS) $(LIB_A) $(CMOCKA_LIBS) $(ALL_LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(ALL_LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(BENCH_LDLIBS) $(ALL_LDLIBS)

# Optional: per-benchmark link flags, e.g. "$(BUILD)/bench/foo: BENCH_LDLIBS += -luv"
-include bench/bench.mk
-include fuzz/fuzz.mk

# Objects of programs are kept (not intermediate), so a rebuild relinks only.
.SECONDARY: $(ALL_OBJS)

# ---- test ----------------------------------------------------------------------

# make test: test-one per selector, then the docs and the exports; each
# appends its counts or its outcome to a tally, summed on the last line.
# (With PLATFORM=cortex-m, platform/cortex-m/cortex-m.mk has test and
# check-deps instead: the images under QEMU.)
ifeq ($(PLATFORM),)
test: check-deps
	@tally=$$(mktemp) || exit 1; rc=0; built=1; \
	for sel in $(SELECTOR) $(if $(filter poll,$(SELECTOR)),,poll); do \
	    if ! $(MAKE) --no-print-directory test-build SELECTOR=$$sel; then \
	        rc=1; echo "the_$${sel}_build" >>$$tally; \
	        [ $$sel = '$(SELECTOR)' ] && built=0; continue; fi; \
	    $(MAKE) --no-print-directory test-one SELECTOR=$$sel TEST_TALLY=$$tally || rc=1; \
	done; \
	if [ -z '$(VALGRIND)' ] && [ $$built = 1 ]; then \
	    $(MAKE) --no-print-directory test-docs || { rc=1; echo the_docs_check >>$$tally; }; \
	    $(MAKE) --no-print-directory test-howitworks || { rc=1; echo the_how-it-works_check >>$$tally; }; \
	    $(MAKE) --no-print-directory test-pipeline || { rc=1; echo the_pipeline_check >>$$tally; }; \
	    $(MAKE) --no-print-directory test-exports || { rc=1; echo the_exports_check >>$$tally; }; \
	    $(MAKE) --no-print-directory test-fuzz || { rc=1; echo the_fuzz_corpora_replay >>$$tally; }; \
	    $(MAKE) --no-print-directory test-c11 || { rc=1; echo the_plain_c11_build >>$$tally; }; \
	fi; \
	if [ $$built = 1 ]; then \
	    $(MAKE) --no-print-directory test-kv || { rc=1; echo the_kv_server_test >>$$tally; }; \
	fi; \
	awk '$$2 != "" { p += $$1; f += $$2; s += $$3; next } \
	     { gsub("_", " "); bad = bad (bad ? ", " : "") $$0 } \
	     END { printf "%d passed, %d failed%s%s\n", p, f, s ? ", " s " skipped" : "", \
	                  bad ? "; also failed: " bad : "" }' $$tally; \
	rm -f $$tally; exit $$rc
endif

# The build make test needs, told in one line: its commands go to a log,
# shown when it fails or warns (V=1 shows them as they run).
TEST_BUILD_LOG := $(BUILD)/.build.log
test-build: check-deps
ifneq ($(V),)
	@$(MAKE) --no-print-directory $(LIB_A) $(LIB_SO) $(TEST_BINS) $(PIPELINE_BINS)
else
	@mkdir -p $(BUILD); \
	if $(MAKE) --no-print-directory $(LIB_A) $(LIB_SO) $(TEST_BINS) $(PIPELINE_BINS) >$(TEST_BUILD_LOG) 2>&1; then \
	    n=$$(grep -c '^$(firstword $(CC)) ' $(TEST_BUILD_LOG)); \
	    if grep -q 'warning:' $(TEST_BUILD_LOG); then cat $(TEST_BUILD_LOG); fi; \
	    if [ "$$n" -gt 0 ]; then echo "== built $(BUILD): $$n compiler runs (log: $(TEST_BUILD_LOG))"; fi; \
	else \
	    cat $(TEST_BUILD_LOG); echo "== build FAILED ($(CONFIG_DESC)); log: $(TEST_BUILD_LOG)"; exit 1; \
	fi
endif

test-one: check-deps $(TEST_BINS)
	@if [ -z '$(TEST_BINS)' ]; then echo 'no tests/test_*.c found' >&2; exit 1; fi
	@echo "== tests: $(CONFIG_DESC) ($(BUILD))"
	@CORO_SELECTOR=$(SELECTOR) TEST_STAMPS=$(TEST_STAMPS) TEST_LOGS=$(TEST_LOGS) \
	TEST_TIMEOUT=$(TEST_TIMEOUT) TEST_RUNNER='$(TEST_RUNNER)' TEST_AGAIN=$(if $(AGAIN),1) \
	TEST_VERBOSE=$(if $(V),1) TEST_TALLY=$(TEST_TALLY) bash scripts/run-tests.sh $(TEST_BINS)

# Every ```c block of the docs compiles; those that define main also run.
DOC_FILES := README.md $(sort $(wildcard docs/*.md))
test-docs: $(LIB_A)
	@DOC_CC='$(CC)' DOC_CFLAGS='$(strip $(ALL_CPPFLAGS) $(ALL_CFLAGS) -Wno-unused-function)' \
	DOC_LDFLAGS='$(ALL_LDFLAGS)' DOC_LIBS='$(abspath $(LIB_A)) $(ALL_LDLIBS)' \
	DOC_OUT=$(BUILD)/docs DOC_AGAIN=$(if $(AGAIN),1) DOC_VERBOSE=$(if $(V),1) \
	DOC_DEPS='$(LIB_A) $(PUBLIC_HEADERS) scripts/docblocks.sh' \
	bash scripts/docblocks.sh $(DOC_FILES)

# docs/how-it-works.md is generated (make docs) from its template and the
# sources it quotes and expands; the check writes it again into $(BUILD)
# and compares, so an edit of tour.c, gen.c, task.c or the macros that
# moves or changes what the page shows fails here until make docs is run.
HOWITWORKS := docs/how-it-works.md
HOWITWORKS_GEN = CC='$(CC)' bash scripts/how-it-works.sh $(HOWITWORKS).in
docs:
	@$(HOWITWORKS_GEN) $(HOWITWORKS) && echo "how-it-works: wrote $(HOWITWORKS)"
test-howitworks:
	@mkdir -p $(BUILD) && $(HOWITWORKS_GEN) $(BUILD)/how-it-works.md || exit 1; \
	if cmp -s $(BUILD)/how-it-works.md $(HOWITWORKS); then \
	    echo "how-it-works: $(HOWITWORKS) is current"; \
	else \
	    diff -u $(HOWITWORKS) $(BUILD)/how-it-works.md | head -20; \
	    echo "how-it-works: $(HOWITWORKS) is out of date: run make docs"; exit 1; \
	fi

# The pipeline example twice: with the inline `async with` forms and with a
# body frame per scope; same output, and the first stays the shorter.
PIPELINE_BINS := $(BUILD)/examples/pipeline $(BUILD)/examples/pipeline_frames
test-pipeline: $(PIPELINE_BINS)
	@bash scripts/pipeline.sh $(BUILD)

# libcoro.so exports the API (coro_*) and, of the internal coro__ names,
# only those the public headers use; nm -D lists what it really exports.
test-exports: $(LIB_SO)
ifeq ($(UNAME_S),Linux)
	@bash scripts/exports.sh check '$(PUBLIC_HEADERS)' $(LIB_OBJS) -- $(LIB_SO)
else
	@echo "exports: not checked on $(UNAME_S)"
endif

test-valgrind:
	@$(MAKE) --no-print-directory test-one VALGRIND=1

# examples/kv_server (this configuration's build: sanitizers included) run
# by scripts/kv_test.py beside a real redis-server; under VALGRIND=1 the
# server runs in valgrind, and any error or leak fails its exit status.
KV_VALGRIND := valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
               --error-exitcode=1 -q
test-kv: $(BUILD)/examples/kv_server
	@command -v python3 >/dev/null 2>&1 || { echo "kv-test: skipped: python3 is not installed"; exit 0; }; \
	KV_WRAP='$(if $(VALGRIND),$(KV_VALGRIND))' timeout $(TEST_TIMEOUT) python3 scripts/kv_test.py $(BUILD)/examples/kv_server

# Every library source builds with a plain `cc -std=c11` and no -D flag
# (each defines the feature macros it needs), warnings as errors.
test-c11:
	@out=$(BUILD)/c11; mkdir -p $$out; rc=0; \
	for f in $(LIB_SRCS); do \
	    $(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -I. -c $$f -o $$out/c11.o || { echo "c11: $$f"; rc=1; }; \
	done; \
	if [ $$rc -eq 0 ]; then echo "c11: $(words $(LIB_SRCS)) sources build with $(CC) -std=c11 and no -D flag"; fi; \
	exit $$rc

# The core and structure suites on the none selector (see NONE_TESTS).
test-none:
	@$(MAKE) --no-print-directory test-build SELECTOR=none
	@$(MAKE) --no-print-directory test-one SELECTOR=none

# The heap-free mode: the core and structure suites with every loop on an
# arena and a hook that fails the test if called (ARENA=1); then a build
# with -DCORO_NO_MALLOC whose core and structure objects reference no
# allocator at all (nm).
HEAPFREE_OBJS = $(filter-out %/thread.o %/net.o %/stream.o %/server.o %/posix.o,$(LIB_OBJS))
test-arena:
	@$(MAKE) --no-print-directory test-build ARENA=1
	@$(MAKE) --no-print-directory test-one ARENA=1
	@$(MAKE) --no-print-directory test-nomalloc NO_MALLOC=1

test-nomalloc: $(HEAPFREE_OBJS)
	@bad=$$(nm -u $(HEAPFREE_OBJS) | grep -wE 'malloc|calloc|realloc|free' | sort -u); \
	if [ -n "$$bad" ]; then echo "CORO_NO_MALLOC: the core still references:$$bad"; exit 1; fi; \
	echo "nomalloc: $(words $(HEAPFREE_OBJS)) core and structure objects built with CORO_NO_MALLOC reference no malloc, calloc, realloc or free"

# cmocka: present, or installed when we are root, or a clear message.
ifeq ($(PLATFORM),)
check-deps:
	@if [ -f /usr/include/cmocka.h ] || \
	    { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists cmocka; }; then \
	    :; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "cmocka is missing: installing libcmocka-dev"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y libcmocka-dev; \
	else \
	    echo "cmocka is missing: run 'sudo apt-get install -y libcmocka-dev' and try again" >&2; \
	    exit 1; \
	fi
	@if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then \
	    :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "redis-server or redis-cli is missing (make test-kv compares with them): installing redis-server redis-tools"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools >/dev/null 2>&1 || \
	    { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools >/dev/null 2>&1; } || \
	    echo "could not install redis-server redis-tools: make test-kv will skip its comparisons"; \
	fi
ifneq ($(VALGRIND),)
	@command -v valgrind >/dev/null 2>&1 || { \
	    echo "valgrind is missing: run 'sudo apt-get install -y valgrind' and try again"; \
	    exit 1; }
endif
endif

# ---- size ----------------------------------------------------------------------

# What coro costs (text and RAM), on this machine and, when its cross
# compiler is here, on a Cortex-M3 (scripts/size.sh); size-docs writes the
# figures into docs/embedding.md. (PLATFORM=cortex-m size: the target's own.)
ifeq ($(PLATFORM),)
size:
	@CC='$(CC)' bash scripts/size.sh
endif
size-docs:
	@CC='$(CC)' bash scripts/size.sh docs

# ---- amalgamation --------------------------------------------------------------

# The library as one file to drop beside coro.h (scripts/amalgamate.sh), and
# the proof that it builds alone: hello from build/coro.c, no -D flags.
amalgamation:
	@bash scripts/amalgamate.sh build/coro.c
	$(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -I. build/coro.c examples/hello.c \
	    -o build/hello-amalgamation -pthread
	./build/hello-amalgamation

# ---- demo ----------------------------------------------------------------------

demo:
	@if [ ! -f examples/tour.c ]; then \
	    echo "make demo: examples/tour.c does not exist yet (it is the tour of the scenes)" >&2; \
	    exit 1; \
	fi
	@$(MAKE) --no-print-directory examples
	./$(BUILD)/examples/tour -10
	@bash examples/demo_net.sh $(BUILD)
	./$(BUILD)/examples/tour 10

# ---- bench ---------------------------------------------------------------------

# Benchmarks are measured without sanitizers and without assertions: the
# recursion gets its own build directory (-ndebug).
bench:
	@if [ ! -f bench/run.sh ]; then \
	    echo "make bench: bench/run.sh does not exist yet" >&2; exit 1; \
	fi
	@$(MAKE) --no-print-directory bench-run SANITIZER= VALGRIND= NDEBUG=1

bench-net:
	@$(MAKE) --no-print-directory bench BENCH_SUITE=net

# The latest micro run against the aims docs/benchmarks.md lists (exits 1 naming each miss).
bench-check:
	@BENCH_OUT=$(abspath $(BENCH_OUT)) bash bench/run.sh check

# Rewrite docs/benchmarks.md and docs/bench-micro.png from the latest run.
bench-docs:
	@BENCH_OUT=$(abspath $(BENCH_OUT)) bash bench/run.sh docs

bench-build:
	@$(MAKE) --no-print-directory bench-bins SANITIZER= VALGRIND= NDEBUG=1

# Instructions per op (callgrind), in the same -ndebug build as make bench.
bench-instr:
	@$(MAKE) --no-print-directory bench-instr-run SANITIZER= VALGRIND= NDEBUG=1

bench-instr-run: bench-bins
	@BENCH_BIN=$(abspath $(BUILD)/bench) bash bench/instr.sh $(ROWS)

bench-bins: $(LIB_A) $(BENCH_BINS)

# run.sh gets the suite as its argument and the locations in the environment.
bench-run: bench-bins
	@mkdir -p $(BENCH_OUT)
	BENCH_SUITE=$(BENCH_SUITE) BENCH_BIN=$(abspath $(BUILD)/bench) BENCH_OUT=$(abspath $(BENCH_OUT)) \
	BENCH_RESULTS=$(abspath $(BENCH_OUT)/results.jsonl) CORO_BUILD=$(abspath $(BUILD)) \
	CORO_LIB=$(abspath $(LIB_A)) CORO_INCLUDE=$(CURDIR) \
	CC='$(CC)' bash bench/run.sh $(BENCH_SUITE)

# ---- install -------------------------------------------------------------------


# coro.pc: its libdir and includedir are written relative to ${prefix} when
# they sit under $(PREFIX), so pkg-config --define-variable=prefix=... moves
# them all (a staged install is used that way in .ci/run).
PC_SUBST = -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
           -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
           -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|'

install: $(LIB_A) $(LIB_SO)
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libcoro.a
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libcoro.so.$(VERSION)
	ln -sf libcoro.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcoro.so.$(MAJOR)
	ln -sf libcoro.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libcoro.so
	sed $(PC_SUBST) coro.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/coro.pc
	@chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/coro.pc
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then \
	    ldconfig; fi

uninstall:
	rm -f $(PUBLIC_HEADERS:%=$(DESTDIR)$(INCLUDEDIR)/%) $(DESTDIR)$(LIBDIR)/libcoro.a \
	      $(DESTDIR)$(LIBDIR)/libcoro.so $(DESTDIR)$(LIBDIR)/libcoro.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/libcoro.so.$(VERSION) $(DESTDIR)$(PKGCONFIGDIR)/coro.pc

clean:
	rm -rf build $(BENCH_OUT)

# The comment block at the top, with the paths of this configuration.
help:
	@sed -n '/^# Targets/,/^$$/p' $(firstword $(MAKEFILE_LIST)) | sed -e 's/^# \{0,1\}//' \
	    -e 's|$$(BUILD)|$(BUILD)|g' -e 's|$$(SELECTOR)|$(SELECTOR)|g' -e 's|$$(BENCH_SUITE)|$(BENCH_SUITE)|g' \
	    -e 's|$$(PKGCONFIGDIR)|$(PKGCONFIGDIR)|g' -e 's|$$(INCLUDEDIR)|$(INCLUDEDIR)|g' \
	    -e 's|$$(LIBDIR)|$(LIBDIR)|g' -e 's|$$(PREFIX)|$(PREFIX)|g'

FORCE:

-include $(ALL_OBJS:.o=.d)
-include platform/cortex-m/cortex-m.mk
