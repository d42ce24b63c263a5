# knmm: the one, non-recursive Makefile.
#
#   make            build the kernel (build/kernel.elf) and the boot ISO
#   make run        boot it in QEMU (MEM=1G by default; MEM=256G works)
#   make test       host unit tests + the kernel's tests in QEMU under several configurations
#                   (TEST=GLOB: those tests only; CONFIG=GLOB: those configurations and steps;
#                   QUIET=1: only failures and the summary; README.md, Testing)
#   make debug      QEMU halted with its gdb stub, and gdb attached with the kernel's symbols
#   make bench      benchmark figures in guest TSC ticks (QEMU -icount: they repeat exactly)
#   make fuzz       the system-call fuzzer, long (SEED=N CALLS=N MEM=... CPU=...; docs/fuzz.md)
#   make bench-host benchmark figures of the host build of the physical allocator (ns)
#   make docs       regenerates every figure and transcript README.md and docs/ quote, from real
#                   runs (tools/gen_docs.py; ONLY=NAME,... for some blocks; a few minutes)
#   make deps       install what is missing (tools/install-deps.sh)
#   make clean
#
# Variables: CROSS=x86_64-elf- (toolchain prefix), CC=clang, CFLAGS=..., DEBUG=0 (no debug
# checks), MEM=..., CPU=..., INIT=PROGRAM (first task of make run; default demo), MONITOR=0
# (make run without the monitor: QEMU leaves with the first task's exit status),
# ACCEL=kvm (default tcg), GDBPORT=1234, SEED=N and CALLS=N (make fuzz), V=1 (show commands).

CROSS ?=
ifeq ($(origin CC),default)
CC := $(CROSS)gcc
endif
ifeq ($(origin LD),default)
LD := $(CROSS)ld
endif
ifeq ($(origin AR),default)
AR := $(CROSS)ar
endif
OBJCOPY ?= $(CROSS)objcopy
HOSTCC ?= cc
PYTHON ?= python3

BUILD := build
DEBUG ?= 1
MEM ?= 1G
CPU ?= max
ACCEL ?= tcg
GDBPORT ?= 1234
SEED ?= 1
CALLS ?= 200000

ifeq ($(V),1)
Q :=
else
Q := @
endif

# What the user may change.
CFLAGS ?= -O2 -g -Wall -Wextra -Werror
HOST_CFLAGS ?= -O1 -g -Wall -Wextra -Werror

# Layers (docs/architecture.md): each sees its own headers and those of the layers below it,
# never one above. The ground floor (kernel/lib) sees include/ and arch's interrupt flags.
LIB_INC := -Iinclude -Iarch/x86_64/include/floor
ARCH_PUBLIC_INC := $(LIB_INC) -Iarch/x86_64/include
ARCH_INC := $(ARCH_PUBLIC_INC) -Iarch/x86_64/include/private
MM_INC := $(ARCH_PUBLIC_INC) -Imm/include
KERNEL_INC := $(MM_INC) -Ikernel/include
TESTS_INC := $(KERNEL_INC) -Iarch/x86_64/include/private -I. -Itests
# The include path of a source file, by its folder.
layer_inc = $(if $(filter kernel/lib/%,$(1)),$(LIB_INC),$(if $(filter arch/% boot/%,$(1)),$(ARCH_INC),$(if \
	$(filter mm/%,$(1)),$(MM_INC),$(if $(filter kernel/%,$(1)),$(KERNEL_INC),$(TESTS_INC)))))

# What makes it a kernel: appended after CFLAGS, so CFLAGS cannot undo it.
KERNEL_BASE_CFLAGS := -std=c11 -ffreestanding -fno-pic -fno-pie -mno-red-zone -mcmodel=kernel \
	-mno-sse -mno-sse2 -mno-mmx -mno-80387 -fno-stack-protector -fstack-clash-protection -nostdlib \
	-fno-omit-frame-pointer -fno-asynchronous-unwind-tables -fno-strict-aliasing \
	-fcf-protection=none -DKNMM_KERNEL -MMD -MP
# Debug checks (free-page poisoning, extra invariants) unless DEBUG=0; benchmarks never.
KERNEL_REQUIRED_CFLAGS := $(KERNEL_BASE_CFLAGS) $(if $(filter 1,$(DEBUG)),-DKNMM_DEBUG)
KERNEL_REQUIRED_ASFLAGS := -D__ASSEMBLER__ -MMD -MP
KERNEL_LDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack -T linker.ld

HOST_REQUIRED_CFLAGS := -std=gnu11 -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all -DKNMM_HOST -DKNMM_DEBUG $(TESTS_INC) -Itests/host/shim -MMD -MP

# ---------------------------------------------------------------- sources

# The kernel make run boots has no test code: the in-kernel tests (and their leak check) are
# linked only into the test kernel, the self-check kernel's own test into that one.
KERNEL_SRCS := $(sort $(wildcard boot/*.S boot/*.c arch/x86_64/*.S arch/x86_64/*.c kernel/*.c \
	kernel/lib/*.c mm/*.c))
KERNEL_OBJS := $(patsubst %,$(BUILD)/kernel/%.o,$(basename $(KERNEL_SRCS)))
RELEASE_OBJS := $(patsubst %,$(BUILD)/release/%.o,$(basename $(KERNEL_SRCS)))
KTEST_OBJS := $(patsubst %,$(BUILD)/kernel/%.o,$(basename $(sort $(wildcard tests/kernel/*.c))))
SELFCHECK_OBJS := $(BUILD)/kernel/tests/kernel/leak.o \
	$(patsubst %,$(BUILD)/kernel/%.o,$(basename $(wildcard tests/selfcheck/*.c)))

# Code that also runs on the host, under ASan and UBSan: all of mm but the files that only make
# sense in the kernel (they touch the real machine, boot data or the kernel's own space), so a
# new mm file is host-tested unless it is listed here; arch's pure page-table code; the floor's
# pure parts.
MM_KERNEL_ONLY := mm/bootmem.c mm/frame.c mm/kdyn.c mm/kspace.c mm/mm_init.c mm/mmsvc.c mm/pmm_boot.c \
	mm/pool.c mm/report.c
HOST_SHARED_SRCS := arch/x86_64/pte.c arch/x86_64/pt.c arch/x86_64/pt_range.c arch/x86_64/trap_decode.c \
	kernel/lib/strutil.c kernel/lib/printf.c kernel/lib/ktest.c kernel/lib/spinlock.c \
	$(filter-out $(MM_KERNEL_ONLY),$(sort $(wildcard mm/*.c))) \
	$(sort $(wildcard tests/host/shim/*.c))
HOST_TEST_SRCS := $(sort $(wildcard tests/host/*.c)) tests/model/vm_model.c
HOST_TEST_OBJS := $(patsubst %,$(BUILD)/host/%.o,$(basename $(HOST_SHARED_SRCS) $(HOST_TEST_SRCS)))
HOST_BENCH_SRCS := $(sort $(wildcard tests/host/bench/*.c))
HOST_BENCH_OBJS := $(patsubst %,$(BUILD)/hostbench/%.o,$(basename $(filter-out kernel/lib/ktest.c,$(HOST_SHARED_SRCS)) \
	$(HOST_BENCH_SRCS)))

# User programs: static ELF64 executables at 4 MiB, GRUB modules of the ISOs.
USER_CFLAGS := -std=gnu11 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -fstack-clash-protection -nostdlib -O2 -g \
	-Wall -Wextra -Werror -fno-omit-frame-pointer -fno-asynchronous-unwind-tables -fcf-protection=none \
	-Iinclude -Iuser/include -Itests -DKNMM_USER -MMD -MP
USER_LIB_SRCS := user/lib/crt0.S user/lib/syscalls.S $(filter-out user/lib/crt0.S user/lib/syscalls.S, \
	$(wildcard user/lib/*.c user/lib/*.S)) kernel/lib/printf.c kernel/lib/string.c kernel/lib/strutil.c
USER_LIB_OBJS := $(patsubst %,$(BUILD)/user/obj/%.o,$(basename $(USER_LIB_SRCS)))
USER_CRT0 := $(BUILD)/user/obj/user/lib/crt0.o
USER_LIBKN := $(BUILD)/user/libkn.a
# Test support shared with the host tests (the memory model), linked where a program uses it.
USER_LIBTEST := $(BUILD)/user/libtest.a
USER_TEST_OBJS := $(BUILD)/user/obj/tests/model/vm_model.o
USER_PROGS := $(sort $(basename $(notdir $(wildcard user/programs/*.c))))
USER_ELFS := $(patsubst %,$(BUILD)/user/%.elf,$(USER_PROGS))
USER_PROG_OBJS := $(patsubst %,$(BUILD)/user/obj/user/programs/%.o,$(USER_PROGS))
BAD_ELFS := $(patsubst %,$(BUILD)/user/bad/bad_%.elf,magic class machine truncated offset overlap kernel wx entry)
TEST_MODULES := $(USER_ELFS) $(BAD_ELFS)
RUN_MODULES := $(USER_ELFS)

KERNEL := $(BUILD)/kernel.elf
KERNEL_TEST := $(BUILD)/kernel-test.elf
KERNEL_SELFCHECK := $(BUILD)/kernel-selfcheck.elf
KERNEL_RELEASE := $(BUILD)/kernel-release.elf
ISO := $(BUILD)/knmm.iso
TEST_ISO := $(BUILD)/knmm-test.iso
SELFCHECK_ISO := $(BUILD)/knmm-selfcheck.iso
SELFCHECK_LOCKS_ISO := $(BUILD)/knmm-selfcheck-locks.iso
BENCH_ISO := $(BUILD)/knmm-bench.iso
# The SMP benchmarks (unmap with and without TLB shootdown), booted with -smp 4 by make bench.
BENCH_SMP_ISO := $(BUILD)/knmm-bench-smp.iso
MONITOR_ISO := $(BUILD)/knmm-monitor.iso
FUZZ_ISO := $(BUILD)/knmm-fuzz.iso
HOST_TESTS := $(BUILD)/host/knmm-host-tests
HOST_BENCH := $(BUILD)/hostbench/knmm-host-bench

INIT ?= demo
MONITOR ?= 1
RUN_CMDLINE := aslr=on init=$(INIT)$(if $(filter 1,$(MONITOR)), monitor)
TEST_CMDLINE := test=* aslr=off
# make test's selection (tests/run.py): TEST= the kernel's test globs (comma-separated), on the
# command line of an ISO of its own; CONFIG= globs over the runner's step names; QUIET=1.
TEST ?=
CONFIG ?= *
QUIET ?= 0
SELECT_ISO := $(BUILD)/knmm-test-select.iso
SELECT_CMDLINE := test=$(TEST) aslr=off
# make run INIT=PROGRAM MONITOR=0 as make test checks it: hello exits 0, evil (no role) 99.
INIT_ISOS := $(BUILD)/knmm-init-hello.iso $(BUILD)/knmm-init-evil.iso
SELFCHECK_CMDLINE := test=selfcheck.* aslr=off
SELFCHECK_LOCKS_CMDLINE := test=selfcheck_locks.* aslr=off
BENCH_CMDLINE := bench aslr=off
BENCH_SMP_CMDLINE := bench=smp aslr=off
MONITOR_CMDLINE := aslr=on init=demo monitor
# The monitor with a first program that never ends (make run INIT=spin): the prompt must come at once.
MONITOR_INIT_ISOS := $(BUILD)/knmm-monitor-spin.iso
FUZZ_CMDLINE := test=user.fuzz fuzz.seed=$(SEED) fuzz.calls=$(CALLS) aslr=off

QEMU_PY := $(PYTHON) tools/qemu.py --accel $(ACCEL)

.PHONY: all iso run test debug bench bench-host fuzz docs clean deps check-deps check-layers format FORCE
.DEFAULT_GOAL := all

all: $(KERNEL) $(ISO) $(USER_ELFS)
iso: $(ISO)

# Every object depends on this Makefile: changed flags rebuild everything.
$(BUILD)/kernel/%.o: %.c Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(KERNEL_REQUIRED_CFLAGS) $(call layer_inc,$<) -c $< -o $@

$(BUILD)/kernel/%.o: %.S Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AS      $<")
	$(Q)$(CC) $(KERNEL_REQUIRED_CFLAGS) $(KERNEL_REQUIRED_ASFLAGS) $(call layer_inc,$<) -c $< -o $@

# The benchmark kernel: same sources, no debug checks.
$(BUILD)/release/%.o: %.c Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $< (release)")
	$(Q)$(CC) $(CFLAGS) $(KERNEL_BASE_CFLAGS) $(call layer_inc,$<) -c $< -o $@

$(BUILD)/release/%.o: %.S Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AS      $< (release)")
	$(Q)$(CC) $(KERNEL_BASE_CFLAGS) $(KERNEL_REQUIRED_ASFLAGS) $(call layer_inc,$<) -c $< -o $@

$(KERNEL_RELEASE): $(RELEASE_OBJS) linker.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) $(KERNEL_LDFLAGS) -o $@ $(RELEASE_OBJS)

$(KERNEL): $(KERNEL_OBJS) linker.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) $(KERNEL_LDFLAGS) -o $@ $(KERNEL_OBJS)
	@echo $(abspath $(KERNEL_OBJS)) > $(BUILD)/kernel.objs

$(KERNEL_TEST): $(KERNEL_OBJS) $(KTEST_OBJS) linker.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) $(KERNEL_LDFLAGS) -o $@ $(KERNEL_OBJS) $(KTEST_OBJS)

# The runner's self-check: the same kernel plus one test that fails on purpose.
$(KERNEL_SELFCHECK): $(KERNEL_OBJS) $(SELFCHECK_OBJS) linker.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) $(KERNEL_LDFLAGS) -o $@ $(KERNEL_OBJS) $(SELFCHECK_OBJS)

# ---------------------------------------------------------------- user programs

$(BUILD)/user/obj/%.o: %.c Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $< (user)")
	$(Q)$(CC) $(CFLAGS) $(USER_CFLAGS) -c $< -o $@

$(BUILD)/user/obj/%.o: %.S Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AS      $< (user)")
	$(Q)$(CC) $(USER_CFLAGS) -D__ASSEMBLER__ -c $< -o $@

# Reached only through the pattern rule below: keep them, or make deletes them as intermediates.
.SECONDARY: $(USER_PROG_OBJS) $(USER_CRT0) $(USER_LIB_OBJS) $(USER_TEST_OBJS)
$(USER_LIBKN): $(filter-out $(USER_CRT0),$(USER_LIB_OBJS))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^
$(USER_LIBTEST): $(USER_TEST_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/user/%.elf: $(BUILD)/user/obj/user/programs/%.o $(USER_CRT0) $(USER_LIBKN) $(USER_LIBTEST) user/user.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) -static -nostdlib -z max-page-size=0x1000 -z noexecstack --build-id=sha1 -T user/user.ld -o $@ $(USER_CRT0) $< \
		$(USER_LIBTEST) $(USER_LIBKN)

$(BAD_ELFS) &: $(BUILD)/user/hello.elf tools/mkbadelf.py
	@echo "  BADELF  $(BUILD)/user/bad/"
	$(Q)$(PYTHON) tools/mkbadelf.py $< $(BUILD)/user/bad

# ISOs: mkiso.sh needs grub-mkrescue, xorriso and mtools, hence check-deps first.
# The run ISO is remade when its command line changes (make run INIT=PROGRAM).
$(BUILD)/run-cmdline: FORCE
	@mkdir -p $(@D)
	@echo '$(RUN_CMDLINE)' | cmp -s - $@ || echo '$(RUN_CMDLINE)' > $@
$(BUILD)/select-cmdline: FORCE
	@mkdir -p $(@D)
	@echo '$(SELECT_CMDLINE)' | cmp -s - $@ || echo '$(SELECT_CMDLINE)' > $@
$(BUILD)/fuzz-cmdline: FORCE
	@mkdir -p $(@D)
	@echo '$(FUZZ_CMDLINE)' | cmp -s - $@ || echo '$(FUZZ_CMDLINE)' > $@
FORCE:

$(ISO): $(KERNEL) $(RUN_MODULES) $(BUILD)/run-cmdline iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL) "$(RUN_CMDLINE)" $(RUN_MODULES)
$(TEST_ISO): $(KERNEL_TEST) $(TEST_MODULES) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL_TEST) "$(TEST_CMDLINE)" $(USER_ELFS) $(addprefix raw:,$(BAD_ELFS))
# The test kernel on the command line TEST= gives it (make test TEST=GLOB).
$(SELECT_ISO): $(KERNEL_TEST) $(TEST_MODULES) $(BUILD)/select-cmdline iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL_TEST) "$(SELECT_CMDLINE)" $(USER_ELFS) $(addprefix raw:,$(BAD_ELFS))
# The run kernel with a first program and no monitor (make run INIT=PROGRAM MONITOR=0).
$(BUILD)/knmm-init-%.iso: $(KERNEL) $(RUN_MODULES) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL) "aslr=on init=$*" $(RUN_MODULES)
$(SELFCHECK_ISO): $(KERNEL_SELFCHECK) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL_SELFCHECK) "$(SELFCHECK_CMDLINE)"
# The same kernel on a command line of its own: one panic per boot (a lock taken out of order).
$(SELFCHECK_LOCKS_ISO): $(KERNEL_SELFCHECK) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL_SELFCHECK) "$(SELFCHECK_LOCKS_CMDLINE)"
# The monitor as make run has it (ASLR on: the tests use the addresses the tasks log), for the runner to drive.
$(MONITOR_ISO): $(KERNEL) $(RUN_MODULES) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL) "$(MONITOR_CMDLINE)" $(RUN_MODULES)
# The monitor with another first program (make run INIT=PROGRAM).
$(BUILD)/knmm-monitor-%.iso: $(KERNEL) $(RUN_MODULES) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL) "aslr=on init=$* monitor" $(RUN_MODULES)
# The fuzzer alone, with its seed and call count on the command line (make fuzz).
$(FUZZ_ISO): $(KERNEL_TEST) $(TEST_MODULES) $(BUILD)/fuzz-cmdline iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL_TEST) "$(FUZZ_CMDLINE)" $(USER_ELFS) $(addprefix raw:,$(BAD_ELFS))
$(BENCH_ISO): $(KERNEL_RELEASE) $(USER_ELFS) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL_RELEASE) "$(BENCH_CMDLINE)" $(USER_ELFS)
$(BENCH_SMP_ISO): $(KERNEL_RELEASE) $(USER_ELFS) iso/grub.cfg.in tools/mkiso.sh | check-deps
	@echo "  ISO     $@"
	$(Q)OBJCOPY=$(OBJCOPY) tools/mkiso.sh $@ $(KERNEL_RELEASE) "$(BENCH_SMP_CMDLINE)" $(USER_ELFS)

# ---------------------------------------------------------------- host build

$(BUILD)/host/%.o: %.c Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  HOSTCC  $<")
	$(Q)$(HOSTCC) $(HOST_CFLAGS) $(HOST_REQUIRED_CFLAGS) -c $< -o $@

$(HOST_TESTS): $(HOST_TEST_OBJS)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOSTCC) -fsanitize=address,undefined -o $@ $^

# Benchmarks: optimised, no sanitizers, no debug checks.
$(BUILD)/hostbench/%.o: %.c Makefile
	@mkdir -p $(@D)
	@$(if $(Q),echo "  HOSTCC  $<")
	$(Q)$(HOSTCC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -DKNMM_HOST $(TESTS_INC) -Itests/host/shim -MMD -MP -c $< -o $@

$(HOST_BENCH): $(HOST_BENCH_OBJS)
	@$(if $(Q),echo "  HOSTLD  $@")
	$(Q)$(HOSTCC) -o $@ $^

# ---------------------------------------------------------------- running

# (the toolchain the build will use is checked too)
DEPS_ENV = CC="$(CC)" LD="$(LD)" OBJCOPY="$(OBJCOPY)"

check-deps:
	@$(DEPS_ENV) tools/install-deps.sh

deps:
	@$(DEPS_ENV) tools/install-deps.sh && echo "knmm: all build, run and test tools are present"

run: $(ISO) | check-deps
	$(Q)$(QEMU_PY) run --iso $(ISO) --mem $(MEM) --cpu $(CPU)

debug: $(ISO) $(KERNEL) | check-deps
	$(Q)$(QEMU_PY) debug --iso $(ISO) --kernel $(KERNEL) --mem $(MEM) --cpu $(CPU) --gdb-port $(GDBPORT)

test: $(KERNEL) $(KERNEL_TEST) $(TEST_ISO) $(SELFCHECK_ISO) $(SELFCHECK_LOCKS_ISO) $(MONITOR_ISO) $(MONITOR_INIT_ISOS) $(INIT_ISOS) \
		$(HOST_TESTS) $(if $(TEST),$(SELECT_ISO)) | check-deps
	$(Q)$(PYTHON) tests/run.py --build $(BUILD) --accel $(ACCEL) --only '$(CONFIG)' \
		$(if $(TEST),--test '$(TEST)') $(if $(filter 1,$(QUIET)),--quiet)

# Formats every C file as .clang-format says (make test checks it).
format: | check-deps
	$(Q)find arch boot include kernel mm tests tools user -name '*.[ch]' -print0 | xargs -0 clang-format --style=file -i

# The layering check alone (make test runs it too): docs/architecture.md.
check-layers: $(KERNEL)
	$(Q)$(PYTHON) tools/check_layers.py $(BUILD)/kernel --objects $(BUILD)/kernel.objs --kernel $(KERNEL)

bench: $(BENCH_ISO) $(BENCH_SMP_ISO) | check-deps
	$(Q)$(QEMU_PY) bench --iso $(BENCH_ISO) --smp-iso $(BENCH_SMP_ISO)

fuzz: $(FUZZ_ISO) | check-deps
	$(Q)$(QEMU_PY) fuzz --iso $(FUZZ_ISO) --mem $(MEM) --cpu $(CPU) --seed $(SEED) --calls $(CALLS)

# The blocks between <!-- generated by tools/gen_docs.py: NAME ... --> markers in README.md and
# docs/*.md, from make bench, make bench-host, the monitor and gdb on the monitor ISO, and a
# fuzzer run; the script makes what it needs (make test checks the markers: gen_docs.py --check).
ONLY ?=
docs: | check-deps
	$(Q)$(PYTHON) tools/gen_docs.py --build $(BUILD) --accel $(ACCEL) $(if $(ONLY),--only '$(ONLY)')

ifeq ($(HOST_BENCH_SRCS),)
bench-host:
	@echo "knmm: no host benchmarks yet"
else
bench-host: $(HOST_BENCH)
	$(Q)$(HOST_BENCH)
endif

# ---------------------------------------------------------------- constants for the Python tools

# The #define constants the gdb extension and the tests read (task states, VMM flags, PTE bits,
# the table charge, DIRECT_MAP_BASE...), generated from the kernel's headers: the compiler
# computes each one in tools/gdb/constants.c (to assembly, never linked) and
# tools/knmm/constants.py writes them as Python. Enumerations come from the debug information.
GDB_CONSTANTS := $(BUILD)/gdb/knmm_constants.py

$(BUILD)/gdb/constants.s: tools/gdb/constants.c Makefile | check-deps
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $< (constants)")
	$(Q)$(CC) $(CFLAGS) $(KERNEL_REQUIRED_CFLAGS) $(TESTS_INC) -S $< -o $@

$(GDB_CONSTANTS): $(BUILD)/gdb/constants.s tools/knmm/constants.py
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(PYTHON) tools/knmm/constants.py $< $@

all test debug: $(GDB_CONSTANTS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -type f -name '*.d' 2>/dev/null)
