# hz3 — top-level build. One build folder (build/), one fragment per component
# (<component>/<component>.mk) that adds its targets to the lists below.
#
#   make                 release library + tools + tests binaries
#   make VARIANT=check   the variant's library under build/check/lib
#   make test            install missing Debian packages, build, run every test
#   make test-clang      build everything with clang in build/clang, run the CLANG_TESTS there
#   make demo            the main job: a real workload on libhz3 vs glibc, watched by hz3top
#   make V=1             show full commands
#
# Variants are compile-time only (the allocator reads no environment):
#   release   default
#   check     assertions, double-free / invalid-free detection, pattern fill
#   noprobes  every USDT probe compiled out
#   noptag    HZ3_SMALL_V2_PTAG_ENABLE=0: classify pointers through page headers (the PTAG A/B comparison)
#   hardened  double/invalid free of every class, canaries, poisoning, shuffled refills, guard
#             pages (docs/hardened.md)
#   magall    every class cached in a magazine, small ones too (at most 256 objects each), no
#             list classes (docs/design.md, "Fast paths and their budget": the A/B)

VARIANT ?= release
VARIANTS := release check noprobes noptag hardened magall
ifeq ($(filter $(VARIANT),$(VARIANTS)),)
$(error unknown VARIANT '$(VARIANT)'; choose one of: $(VARIANTS))
endif

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=

# release lives at build/lib so `LD_PRELOAD=build/lib/libhz3.so` works; others in build/<variant>/lib.
ifeq ($(VARIANT),release)
VDIR := $(BUILD)
else
VDIR := $(BUILD)/$(VARIANT)
endif

CC      ?= gcc
CXX     ?= g++
CLANG   ?= clang
BPFTOOL ?= bpftool

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif

CXXSTD     := -std=c++20
OPT        ?= -O2 -g

# Flags whose spelling differs between gcc and clang, so `make CC=clang CXX=clang++` builds the
# same programs (the compiler is asked what it is; `c++` may be either):
#   CXX_CONSTEXPR_LIMIT  room for the size-class tables computed at compile time
#   CXX_NO_ALLOC_DCE     keep new/delete pairs the tests make on purpose (gcc elides them even
#                        with -fno-builtin; clang's -fno-builtin already keeps them)
#   WARN_MISUSE          silence warnings about the heap misuse test programs commit on purpose
#   WARN                 clang also warns about statics only used under `if constexpr (false)`,
#                        which is how the variants compile code out
#   CXXSTD               clang 14 leaves C++14's sized deallocation off unless asked
CXX_IS_CLANG := $(if $(findstring clang,$(shell $(CXX) --version 2>/dev/null | head -1)),1)
WARN := -Wall -Wextra -Wno-unused-parameter
ifeq ($(CXX_IS_CLANG),1)
CXX_CONSTEXPR_LIMIT := -fconstexpr-steps=100000000
CXXSTD += -fsized-deallocation
CXX_NO_ALLOC_DCE :=
WARN += -Wno-unneeded-internal-declaration
WARN_MISUSE := -Wno-free-nonheap-object -Wno-mismatched-new-delete
else
CXX_CONSTEXPR_LIMIT := -fconstexpr-ops-limit=100000000
CXX_NO_ALLOC_DCE := -fno-allocation-dce
WARN_MISUSE := -Wno-free-nonheap-object -Wno-alloc-size-larger-than -Wno-use-after-free \
               -Wno-mismatched-new-delete
endif

# Targets each fragment appends to. A fragment's objects also depend on the makefiles that set
# their flags (this one and the fragment), so a changed flag rebuilds them.
ALL_TARGETS  :=
CLEAN_EXTRA  :=

.PHONY: all test test-check test-clang demo bench triage install clean format format-check deps \
        deps-test deps-demo deps-bench lib variants
all: lib

include libhz3/libhz3.mk
include probes/probes.mk
include hz3top/hz3top.mk
include bench/bench.mk
include libhz3/tests/tests.mk
include libhz3/reliability/reliability.mk

all: $(ALL_TARGETS)

# Every variant's library, for tests that compare them.
variants:
	$(Q)for v in $(VARIANTS); do $(MAKE) --no-print-directory VARIANT=$$v lib || exit 1; done

deps deps-test:
	$(Q)bash scripts/deps.sh test
deps-demo:
	$(Q)bash scripts/deps.sh demo
deps-bench:
	$(Q)bash scripts/deps.sh bench

# `make test`: one command on a fresh Debian 12 machine. Installs what is missing, builds
# every variant and tool, then runs scripts/run-tests.sh, which ends with "N passed, M failed".
test: deps-test
	$(Q)$(MAKE) --no-print-directory variants
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) bash scripts/run-tests.sh $(TESTS)

# `make test-clang`: everything built by clang (CC=clang CXX=clang++) in $(BUILD)/clang, then the
# tests in CLANG_TESTS (substrings, as for TESTS) run against that build. scripts/tests/t_build.sh
# in `make test` checks the clang release library only.
CLANG_TESTS ?= libhz3/unit/t_unit libhz3/tests/t_api libhz3/tests/t_death libhz3/tests/t_stress \
               libhz3/tests/t_glibc hz3top/tests/t_hz3top_unit hz3top/tests/t_hz3top_counts \
               probes/tests
test-clang: deps-test
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/clang CC=clang CXX=clang++ variants
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/clang CC=clang CXX=clang++ all
	$(Q)BUILD=$(BUILD)/clang bash scripts/run-tests.sh $(CLANG_TESTS)

demo: deps-demo
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) bash scripts/demo.sh

clean:
	rm -rf $(BUILD) $(CLEAN_EXTRA)

# clang-format 14 over every tracked C++ file (scripts/format.sh; BPF C is kernel style).
# format-check exits 1 and names each file that needs reformatting; make test runs it too
# (scripts/tests/t_format.sh).
format:
	$(Q)bash scripts/format.sh fix
format-check:
	$(Q)bash scripts/format.sh check
