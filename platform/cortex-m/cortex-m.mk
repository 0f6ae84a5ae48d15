# platform/cortex-m/cortex-m.mk - the bare-metal target (issue 9, item 5):
# the core, sync, queue and group built for a Cortex-M3/M4 with
# arm-none-eabi-gcc and newlib-nano, and test images run under
# qemu-system-arm (MPS2 board, semihosting for output and exit status).
#
# Included by the Makefile (one -include line at its end). Its targets work
# from any configuration:
#   cortex-m        build the images (build/cortex-m/*.elf)
#   cortex-m-test   run them under QEMU: hello (exit 0), hello (exit 1, to
#                   prove the exit status follows), the clock check, the
#                   minimal images, the suite (tests/embedded/test_embedded.c)
#                   on libcoro.a and on the amalgamation (scripts/amalgamate.sh)
#   cortex-m-size   text/data/bss of coro's objects and of the images
#   cortex-m-deps   check the cross compiler and QEMU (installs them as root)
#   cortex-m-clean  remove build/cortex-m
# With PLATFORM=cortex-m, `make`, `make test`, `make size` and
# `make check-deps` mean these (make prints that it overrides the hosted
# recipes of test and check-deps: expected).
#
# Options: CM_CPU=cortex-m3 (default; board mps2-an385) or cortex-m4
# (mps2-an386), CM_OPT=-Os, CM_LABELS=1 (the labels-as-values resume form,
# -DCORO_LABELS), CM_TIMEOUT=60 (seconds per image),
# CM_PREFIX=arm-none-eabi-, CM_QEMU=qemu-system-arm.
#
# The core is compiled unmodified, with no -D flag: coro.h leaves out the
# hosted layer (CORO_HOSTED is 0 off POSIX), the selector is
# selectors/none.c, and port.c is the port (coro_platform.h: the clock,
# the report line, the idle wait) on this directory's clock and
# semihosting. The running loop is a plain static here (no TLS).

CM_DIR := platform/cortex-m
CM_TESTS := tests/embedded
override CM_LABELS := $(filter-out 0,$(CM_LABELS))
CM_BUILD = build/cortex-m/$(CM_CPU)$(if $(filter-out -Os,$(CM_OPT)),$(subst -,,$(CM_OPT)))$(if $(CM_LABELS),-labels)
CM_PREFIX ?= arm-none-eabi-
CM_CC := $(CM_PREFIX)gcc
CM_AR := $(CM_PREFIX)ar
CM_SIZE := $(CM_PREFIX)size
CM_NM := $(CM_PREFIX)nm
CM_QEMU ?= qemu-system-arm
CM_CPU ?= cortex-m3
CM_MACHINE ?= $(if $(filter cortex-m4,$(CM_CPU)),mps2-an386,mps2-an385)
CM_OPT ?= -Os
CM_TIMEOUT ?= 60

CM_ARCH := -mcpu=$(CM_CPU) -mthumb -mfloat-abi=soft
CM_CFLAGS := $(CM_ARCH) $(CM_OPT) -g -std=c11 -ffreestanding -ffunction-sections -fdata-sections \
             -Wall -Wextra -MMD -MP
# the core, as the issue asks to build it
CM_CORE_CPPFLAGS := -I. $(if $(CM_LABELS),-DCORO_LABELS)
CM_PLAT_CPPFLAGS := -I$(CM_DIR)
CM_LDFLAGS := $(CM_ARCH) --specs=nano.specs -nostartfiles -T $(CM_DIR)/mps2.ld -Wl,--gc-sections
CM_LDLIBS := -lc_nano -lgcc

# core + structure layers; runner.c too (coro_run), no net/stream/thread
CM_CORE_SRCS := errors.c mem.c arena.c loop.c report.c runner.c heap.c future.c task.c gen.c agen.c inspect.c waitq.c fd.c \
                sync.c queue.c group.c selectors/none.c
CM_CORE_OBJS := $(CM_CORE_SRCS:%.c=$(CM_BUILD)/core/%.o)
CM_PLAT_SRCS := port.c startup.c semihost.c print.c clock.c libc_stubs.c
CM_PLAT_OBJS := $(CM_PLAT_SRCS:%.c=$(CM_BUILD)/platform/%.o)
CM_LIB := $(CM_BUILD)/libcoro.a
CM_PLAT_LIB := $(CM_BUILD)/libcm.a
CM_IMAGES = $(CM_BUILD)/hello0.elf $(CM_BUILD)/hello1.elf $(CM_BUILD)/clock.elf \
            $(CM_BUILD)/minimal.elf $(CM_BUILD)/minimal-stubs.elf $(CM_BUILD)/test_embedded.elf \
            $(CM_BUILD)/test_embedded-amalgamation.elf $(CM_BUILD)/test_embedded-heapfree.elf
CM_DEPS_FILE := $(CM_DIR)/cortex-m.mk

.PHONY: cortex-m cortex-m-test cortex-m-size cortex-m-deps cortex-m-clean

cortex-m: $(CM_IMAGES)

$(CM_BUILD)/core/%.o: %.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_CORE_CPPFLAGS) $(CM_CFLAGS) -c -o $@ $<

$(CM_BUILD)/platform/%.o: $(CM_DIR)/%.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_PLAT_CPPFLAGS) $(CM_CFLAGS) -c -o $@ $<

$(CM_BUILD)/tests/%.o: $(CM_TESTS)/%.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_CORE_CPPFLAGS) $(CM_PLAT_CPPFLAGS) $(CM_CFLAGS) -c -o $@ $<

$(CM_BUILD)/tests/hello0.o: $(CM_TESTS)/hello.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_PLAT_CPPFLAGS) $(CM_CFLAGS) -DHELLO_STATUS=0 -c -o $@ $<

$(CM_BUILD)/tests/hello1.o: $(CM_TESTS)/hello.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_PLAT_CPPFLAGS) $(CM_CFLAGS) -DHELLO_STATUS=1 -c -o $@ $<

$(CM_LIB): $(CM_CORE_OBJS)
	@rm -f $@
	$(CM_AR) rcs $@ $^

$(CM_PLAT_LIB): $(CM_PLAT_OBJS)
	@rm -f $@
	$(CM_AR) rcs $@ $^

$(CM_BUILD)/%.elf: $(CM_BUILD)/tests/%.o $(CM_LIB) $(CM_PLAT_LIB) $(CM_DIR)/mps2.ld
	$(CM_CC) $(CM_LDFLAGS) -Wl,-Map=$(@:.elf=.map) -o $@ $< $(CM_LIB) $(CM_PLAT_LIB) $(CM_LDLIBS)

# the minimal image again with newlib's strerror and malloc replaced by
# the smallest stubs (stubs.c): a measurement of what they cost
$(CM_BUILD)/minimal-stubs.elf: $(CM_BUILD)/tests/minimal.o $(CM_BUILD)/platform/stubs.o $(CM_LIB) \
                                 $(CM_PLAT_LIB) $(CM_DIR)/mps2.ld
	$(CM_CC) $(CM_LDFLAGS) -Wl,-Map=$(@:.elf=.map) -o $@ $< $(CM_BUILD)/platform/stubs.o $(CM_LIB) \
	    $(CM_PLAT_LIB) $(CM_LDLIBS)

# the same suite on the one-file library (issue 9 item 6): coro.c from
# scripts/amalgamate.sh, compiled alone with no -D (it picks selectors/none
# off POSIX), linked with the suite and the platform instead of libcoro.a
$(CM_BUILD)/coro.c: $(CM_CORE_SRCS) $(wildcard coro*.h) scripts/amalgamate.sh
	@mkdir -p $(@D)
	bash scripts/amalgamate.sh $@

$(CM_BUILD)/amalgamation/coro.o: $(CM_BUILD)/coro.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_CORE_CPPFLAGS) $(CM_CFLAGS) -c -o $@ $<

$(CM_BUILD)/test_embedded-amalgamation.elf: $(CM_BUILD)/tests/test_embedded.o $(CM_BUILD)/amalgamation/coro.o \
                                            $(CM_PLAT_LIB) $(CM_DIR)/mps2.ld
	$(CM_CC) $(CM_LDFLAGS) -Wl,-Map=$(@:.elf=.map) -o $@ $< $(CM_BUILD)/amalgamation/coro.o \
	    $(CM_PLAT_LIB) $(CM_LDLIBS)

# the heap-free image (issue 9 item 3): the suite and the one-file library
# built with -DCORO_NO_MALLOC, the loop on a 16 KB arena; the link must hold
# no allocator at all (nm)
$(CM_BUILD)/heapfree/%.o: $(CM_BUILD)/%.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_CORE_CPPFLAGS) -DCORO_NO_MALLOC $(CM_CFLAGS) -c -o $@ $<

$(CM_BUILD)/heapfree/test_embedded.o: $(CM_TESTS)/test_embedded.c $(CM_DEPS_FILE)
	@mkdir -p $(@D)
	$(CM_CC) $(CM_CORE_CPPFLAGS) $(CM_PLAT_CPPFLAGS) -DCORO_NO_MALLOC $(CM_CFLAGS) -c -o $@ $<

$(CM_BUILD)/test_embedded-heapfree.elf: $(CM_BUILD)/heapfree/test_embedded.o $(CM_BUILD)/heapfree/coro.o \
                                        $(CM_PLAT_LIB) $(CM_DIR)/mps2.ld
	$(CM_CC) $(CM_LDFLAGS) -Wl,-Map=$(@:.elf=.map) -o $@ $< $(CM_BUILD)/heapfree/coro.o \
	    $(CM_PLAT_LIB) $(CM_LDLIBS)
	@if $(CM_NM) $@ | grep -wqE '_?(malloc|calloc|realloc|free|_malloc_r|_free_r)'; then \
	    echo "cortex-m: $@ links an allocator:"; $(CM_NM) $@ | grep -wE '_?(malloc|calloc|realloc|free|_malloc_r|_free_r)'; \
	    rm -f $@; exit 1; fi

.SECONDARY: $(CM_BUILD)/heapfree/coro.o $(CM_BUILD)/heapfree/test_embedded.o $(CM_BUILD)/coro.c $(CM_BUILD)/amalgamation/coro.o $(CM_CORE_OBJS) $(CM_PLAT_OBJS) $(CM_BUILD)/platform/stubs.o \
            $(patsubst %.c,$(CM_BUILD)/tests/%.o,$(notdir $(wildcard $(CM_TESTS)/*.c))) \
            $(CM_BUILD)/tests/hello0.o $(CM_BUILD)/tests/hello1.o

# Each image under QEMU, its exit status checked; the suite's verdict last.
CM_RUN = CM_MACHINE=$(CM_MACHINE) CM_QEMU=$(CM_QEMU) sh $(CM_DIR)/run.sh
cortex-m-test: cortex-m-deps $(CM_IMAGES)
	@echo "== cortex-m: $(CM_CPU) on qemu $(CM_MACHINE)"
	@rc=0; \
	expect() { want=$$1; img=$$2; echo "-- $$img (expects exit status $$want)"; \
	    $(CM_RUN) $$img $(CM_TIMEOUT); got=$$?; \
	    if [ $$got -ne $$want ]; then \
	        if [ $$got -eq 124 ]; then echo "FAILED: $$img timed out after $(CM_TIMEOUT)s"; \
	        else echo "FAILED: $$img exit status $$got, expected $$want"; fi; rc=1; fi; }; \
	expect 0 $(CM_BUILD)/hello0.elf; \
	expect 1 $(CM_BUILD)/hello1.elf; \
	expect 0 $(CM_BUILD)/clock.elf; \
	expect 0 $(CM_BUILD)/minimal.elf; \
	expect 0 $(CM_BUILD)/minimal-stubs.elf; \
	expect 0 $(CM_BUILD)/test_embedded.elf; \
	expect 0 $(CM_BUILD)/test_embedded-amalgamation.elf; \
	expect 0 $(CM_BUILD)/test_embedded-heapfree.elf; \
	if [ $$rc -ne 0 ]; then echo "== cortex-m: FAILED"; exit 1; fi; \
	echo "== cortex-m: all images passed"

cortex-m-size: $(CM_IMAGES) $(CM_LIB)
	@echo "== coro's objects ($(CM_CPU), $(CM_OPT), built as linked: every function kept)"
	@$(CM_SIZE) -t $(CM_CORE_OBJS) | sed 's|$(CM_BUILD)/||'
	@echo "== images (--gc-sections: what is reachable; newlib-nano, no crt0)"
	@$(CM_SIZE) $(CM_IMAGES) | sed 's|$(CM_BUILD)/||'
	@for img in minimal minimal-stubs test_embedded; do \
	    echo "== $$img.elf: coro's own share (sections from libcoro.a in the map)"; \
	    awk -v lib=libcoro.a -f $(CM_DIR)/mapsize.awk $(CM_BUILD)/$$img.map; \
	    echo "== $$img.elf: the largest libc/libgcc members linked"; \
	    awk -v lib=ALL -v top=12 -f $(CM_DIR)/mapsize.awk $(CM_BUILD)/$$img.map; \
	done

cortex-m-deps:
	@missing=; \
	command -v $(CM_CC) >/dev/null 2>&1 || missing="$$missing gcc-arm-none-eabi"; \
	echo '#include <stdlib.h>' | $(CM_CC) --specs=nano.specs -E -x c - >/dev/null 2>&1 || \
	    missing="$$missing libnewlib-arm-none-eabi"; \
	command -v $(CM_QEMU) >/dev/null 2>&1 || missing="$$missing qemu-system-arm"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	    echo "cortex-m: installing$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	        gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm; \
	else \
	    echo "cortex-m: missing$$missing: run 'sudo apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm'" >&2; \
	    exit 1; \
	fi

cortex-m-clean:
	rm -rf build/cortex-m

-include $(wildcard $(CM_BUILD)/*/*.d $(CM_BUILD)/*/*/*.d)

ifeq ($(PLATFORM),cortex-m)
.DEFAULT_GOAL := cortex-m
.PHONY: size
# these stand for the hosted recipes of the same names (the Makefile leaves
# them out when PLATFORM is set)
check-deps: cortex-m-deps
	@:
test: cortex-m-test
	@:
size: cortex-m-size
endif
