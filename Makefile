# coro - asyncio for C.  GNU make.
#
# Targets
#   all (default)  build/libcoro.a and build/libcoro.so
#   examples       every examples/*.c -> $(BUILD)/examples/NAME
#   demo           build the examples, then run $(BUILD)/examples/tour
#   test           check-deps, then the whole cmocka suite once per selector:
#                  $(SELECTOR) first, then poll (when $(SELECTOR) is not poll)
#   test-one       the suite for the current SELECTOR only
#   test-valgrind  test-one under valgrind (same as test-one VALGRIND=1)
#   bench          bench/*.c built with -O2 -DNDEBUG, no sanitizer, then
#                  bench/run.sh (results in bench/out/results.jsonl)
#   bench-net      the same with BENCH_SUITE=net (the network suite)
#   bench-build    build the benchmarks only
#   bench-check    the latest micro results against the aims (bench/run.sh check)
#   bench-docs     rewrite docs/benchmarks.md and its chart from the latest run
#   check-deps     make sure cmocka is there (installs it when run as root)
#   install        coro.h (and its parts) to $(PREFIX)/include, the libraries to $(PREFIX)/lib
#   uninstall      remove what install put there
#   clean          remove build/ and bench/out/
#
# Options (on the command line: make test SANITIZER=address,undefined)
#   CC=clang            any C11 compiler (gcc and clang are tested)
#   SELECTOR=poll       force a backend: epoll, kqueue or poll (default: epoll
#                       on Linux, kqueue on macOS and the BSDs, else poll)
#   SANITIZER=a,b       -fsanitize=a,b on compile and link (not with VALGRIND)
#   LABELS=1            the labels-as-values resume form (-DCORO_LABELS)
#   NDEBUG=1            -DNDEBUG (what bench uses)
#   VALGRIND=1          run each test binary under valgrind (leaks are errors)
#   WERROR=0            warnings stay warnings
#   TEST_TIMEOUT=secs   per test binary (default 120, 900 under valgrind)
#   PREFIX=/usr/local   DESTDIR= for staged installs
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
ifeq ($(filter epoll kqueue poll,$(SELECTOR)),)
$(error SELECTOR must be epoll, kqueue or poll, not '$(SELECTOR)')
endif

# Switches: empty or 0 is off, anything else is on.
override LABELS := $(filter-out 0,$(LABELS))
override NDEBUG := $(filter-out 0,$(NDEBUG))
override VALGRIND := $(filter-out 0,$(VALGRIND))

# ---- the build directory ---------------------------------------------------

comma := ,
CC_NAME := $(notdir $(lastword $(CC)))
ifneq ($(origin BUILD),command line)
ifeq ($(CC_NAME)|$(SELECTOR)|$(SANITIZER)$(LABELS)$(NDEBUG),cc|$(DEFAULT_SELECTOR)|)
BUILD := build
else
BUILD := build/$(CC_NAME)-$(SELECTOR)$(if $(SANITIZER),-san-$(subst $(comma),-,$(SANITIZER)))$(if $(LABELS),-labels)$(if $(NDEBUG),-ndebug)
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

ALL_CPPFLAGS = $(strip $(CORO_CPPFLAGS) $(CPPFLAGS))
ALL_CFLAGS = $(strip $(CORO_CFLAGS) $(CFLAGS))
ALL_LDFLAGS = $(strip $(CORO_LDFLAGS) $(LDFLAGS))
ALL_LDLIBS = $(strip $(LDLIBS) $(CORO_LDLIBS))

# The shared library: a soname, and on Linux no undefined symbols (a module
# missing from LIB_SRCS fails here, not in some program that links it later;
# sanitizer runtimes are left to the program).
ifeq ($(UNAME_S),Darwin)
SO_FLAGS := -Wl,-install_name,@rpath/libcoro.so.$(MAJOR)
else
SO_FLAGS := -Wl,-soname,libcoro.so.$(MAJOR) $(if $(SANITIZER),,-Wl,-z,defs)
endif

HAVE_PKG_CONFIG := $(shell command -v pkg-config 2>/dev/null)
CMOCKA_CFLAGS ?= $(if $(HAVE_PKG_CONFIG),$(shell pkg-config --cflags cmocka 2>/dev/null))
CMOCKA_LIBS ?= $(or $(if $(HAVE_PKG_CONFIG),$(shell pkg-config --libs cmocka 2>/dev/null)),-lcmocka)

# ---- sources -----------------------------------------------------------------

# The library: an explicit list (add new modules here), plus one selector.
LIB_SRCS := errors.c mem.c loop.c runner.c heap.c future.c task.c gen.c waitq.c fd.c selectors/$(SELECTOR).c \
            $(wildcard sync.c queue.c group.c thread.c net.c stream.c server.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_A := $(BUILD)/libcoro.a
LIB_SO := $(BUILD)/libcoro.so

# Tests: each tests/test_*.c is one cmocka program; any other tests/*.c is a
# helper linked into every test.
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_HELPER_SRCS := $(filter-out $(TEST_SRCS),$(sort $(wildcard tests/*.c)))
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

# ---- running tests -------------------------------------------------------------

ifneq ($(VALGRIND),)
TEST_RUNNER := valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
               --error-exitcode=1 -q
TEST_TIMEOUT ?= 900
else
TEST_RUNNER :=
TEST_TIMEOUT ?= 120
endif
TIMEOUT_CMD := $(if $(shell command -v timeout 2>/dev/null),timeout $(TEST_TIMEOUT))
export ASAN_OPTIONS ?= detect_leaks=1
export UBSAN_OPTIONS ?= print_stacktrace=1
CONFIG_DESC = $(strip $(SELECTOR) selector, $(CC) $(if $(SANITIZER),-fsanitize=$(SANITIZER)) \
              $(if $(LABELS),labels-as-values) $(if $(NDEBUG),NDEBUG) $(if $(VALGRIND),valgrind))

# ---- targets -------------------------------------------------------------------

.PHONY: all examples demo test test-one test-valgrind check-deps bench bench-net \
        bench-build bench-bins bench-run bench-check bench-docs install uninstall clean help FORCE

all: $(LIB_A) $(LIB_SO)

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

$(LIB_SO): $(LIB_OBJS)
	$(CC) $(strip -shared $(ALL_LDFLAGS) $(SO_FLAGS)) -o $@ $(LIB_OBJS) $(ALL_LDLIBS)

# tests: cmocka's headers, the helpers' headers; cmocka must be there first
$(TEST_OBJS) $(TEST_HELPER_OBJS): EXTRA_CPPFLAGS = $(CMOCKA_CFLAGS) -Itests
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

# Objects of programs are kept (not intermediate), so a rebuild relinks only.
.SECONDARY: $(ALL_OBJS)

# ---- test ----------------------------------------------------------------------

test: check-deps
	@rc=0; \
	$(MAKE) --no-print-directory test-one || rc=1; \
	if [ "$(SELECTOR)" != poll ]; then \
	    $(MAKE) --no-print-directory test-one SELECTOR=poll || rc=1; \
	fi; \
	exit $$rc

test-one: check-deps $(TEST_BINS)
	@if [ -z '$(TEST_BINS)' ]; then echo 'no tests/test_*.c found' >&2; exit 1; fi
	@echo "== tests: $(CONFIG_DESC) ($(BUILD))"
	@failed=; n=0; \
	for t in $(TEST_BINS); do \
	    name=$${t##*/}; n=$$((n + 1)); \
	    echo "-- $$name"; \
	    CORO_SELECTOR=$(SELECTOR) $(TIMEOUT_CMD) $(TEST_RUNNER) ./$$t; rc=$$?; \
	    if [ $$rc -ne 0 ]; then \
	        if [ $$rc -eq 124 ]; then why="timed out after $(TEST_TIMEOUT)s"; \
	        else why="exit status $$rc"; fi; \
	        echo "FAILED: $$name ($$why)"; failed="$$failed $$name"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then \
	    echo "== FAILED ($(CONFIG_DESC)):$$failed"; exit 1; \
	fi; \
	echo "== all $$n test programs passed ($(CONFIG_DESC))"

test-valgrind:
	@$(MAKE) --no-print-directory test-one VALGRIND=1

# cmocka: present, or installed when we are root, or a clear message.
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
ifneq ($(VALGRIND),)
	@command -v valgrind >/dev/null 2>&1 || { \
	    echo "valgrind is missing: run 'sudo apt-get install -y valgrind' and try again"; \
	    exit 1; }
endif

# ---- demo ----------------------------------------------------------------------

demo:
	@if [ ! -f examples/tour.c ]; then \
	    echo "make demo: examples/tour.c does not exist yet (it is the tour of the scenes)" >&2; \
	    exit 1; \
	fi
	@$(MAKE) --no-print-directory examples
	./$(BUILD)/examples/tour
	@bash examples/demo_net.sh $(BUILD)

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

# The latest micro run against the aims of BENCHMARKS.md (exits 1 naming each miss).
bench-check:
	@BENCH_OUT=$(abspath $(BENCH_OUT)) bash bench/run.sh check

# Rewrite docs/benchmarks.md and docs/bench-micro.png from the latest run.
bench-docs:
	@BENCH_OUT=$(abspath $(BENCH_OUT)) bash bench/run.sh docs

bench-build:
	@$(MAKE) --no-print-directory bench-bins SANITIZER= VALGRIND= NDEBUG=1

bench-bins: $(LIB_A) $(BENCH_BINS)

# run.sh gets the suite as its argument and the locations in the environment.
bench-run: bench-bins
	@mkdir -p $(BENCH_OUT)
	BENCH_SUITE=$(BENCH_SUITE) BENCH_BIN=$(abspath $(BUILD)/bench) BENCH_OUT=$(abspath $(BENCH_OUT)) \
	BENCH_RESULTS=$(abspath $(BENCH_OUT)/results.jsonl) CORO_BUILD=$(abspath $(BUILD)) \
	CORO_LIB=$(abspath $(LIB_A)) CORO_INCLUDE=$(CURDIR) \
	CC='$(CC)' bash bench/run.sh $(BENCH_SUITE)

# ---- install -------------------------------------------------------------------

# coro.h and the parts it includes (users include coro.h only)
PUBLIC_HEADERS := coro.h coro_impl.h coro_sync.h coro_queue.h coro_group.h coro_thread.h coro_net.h

install: $(LIB_A) $(LIB_SO)
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libcoro.a
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libcoro.so.$(VERSION)
	ln -sf libcoro.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcoro.so.$(MAJOR)
	ln -sf libcoro.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libcoro.so
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then \
	    ldconfig; fi

uninstall:
	rm -f $(PUBLIC_HEADERS:%=$(DESTDIR)$(INCLUDEDIR)/%) $(DESTDIR)$(LIBDIR)/libcoro.a \
	      $(DESTDIR)$(LIBDIR)/libcoro.so $(DESTDIR)$(LIBDIR)/libcoro.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/libcoro.so.$(VERSION)

clean:
	rm -rf build $(BENCH_OUT)

help:
	@sed -n '/^# Targets/,/^$$/p' $(firstword $(MAKEFILE_LIST)) | sed 's/^# \{0,1\}//'

FORCE:

-include $(ALL_OBJS:.o=.d)
