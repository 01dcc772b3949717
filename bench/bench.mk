# bench/ — benchmark workloads, the interleaved runner (`make bench`), the A/B triage tool
# (`make triage`) and the callgrind fast-path budget. Included by the top-level Makefile; uses its
# BUILD, Q, msg, CXX, WARN, CXXSTD, OPT. The workloads never link libhz3: the allocator under test
# is always chosen with LD_PRELOAD, so one binary serves every allocator and every revision.
#
#   make bench                        every workload x allocator, RUNS=10, into docs/benchmarks/
#   make bench QUICK=1                smoke run (1 run, tiny sizes), into build/bench-quick/
#   make bench-ptag                   the PTAG A/B comparison (on vs off), docs/benchmarks/ptag-ab.md
#   make triage A=noptag B=release    paired A/B under perf stat and callgrind; exit 1 on regression
#   make triage-proof                 triage's false-positive and detection proof (docs/bench.md)
#   make fastpath-golden              rewrite bench/fastpath.golden from the current release build
#
# Knobs (make variables or environment): RUNS SCALE ITERS THREADS WORKLOADS ALLOCATORS OUT NICE for
# bench; A B WORKLOAD RUNS THRESHOLD GATE (or FAIL_ON) GATE_WALL RETRIES TRIAGE_ARGS for triage. docs/bench.md explains each.

BENCH_NAMES := ssot xfree prodcons churn larson realloc aligned fastpath \
               largechurn xthread_small xthread_random idle
BENCH_BINS  := $(addprefix $(BUILD)/bin/bench_,$(BENCH_NAMES))
BENCH_OBJ   := $(BUILD)/obj/bench
BENCH_MK    := Makefile bench/bench.mk
ALL_TARGETS += $(BENCH_BINS)

# -fno-builtin-*: GCC may otherwise delete a malloc/free pair whose block it can prove unused,
# and the benchmark would time nothing. The workloads are built the same for every allocator.
BENCH_CXXFLAGS := $(CXXSTD) $(OPT) $(WARN) -pthread -MMD -MP \
                  -fno-builtin-malloc -fno-builtin-free -fno-builtin-realloc -fno-builtin-calloc

# Debian's interpreter: python3-matplotlib is a Debian package, a pyenv shim first in PATH would
# not see it. The scripts need only the standard library except for plotting.
BENCH_PY ?= /usr/bin/python3

# Directories are made in the recipe rather than by shared directory targets, which other
# fragments may define too.
$(BUILD)/bin/bench_%: bench/%.cc bench/common.h bench/ring.h $(BENCH_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D) $(BENCH_OBJ)
	$(Q)$(CXX) $(BENCH_CXXFLAGS) -MF $(BENCH_OBJ)/$*.d -MT $@ -o $@ $< -ldl

-include $(wildcard $(BENCH_OBJ)/*.d)

# Arguments that are passed only when set, so the scripts' own defaults stay in one place.
bench_opt = $(if $(strip $($(1))),--$(2) '$(strip $($(1)))')

bench-bins: $(BENCH_BINS)

bench: deps-bench
	$(Q)$(MAKE) --no-print-directory variants
	$(Q)$(MAKE) --no-print-directory bench-bins
	$(Q)$(BENCH_PY) bench/run.py --build $(BUILD) $(if $(QUICK),--quick) \
	  $(call bench_opt,RUNS,runs) $(call bench_opt,SCALE,scale) $(call bench_opt,ITERS,iters) \
	  $(call bench_opt,THREADS,threads) $(call bench_opt,WORKLOADS,workloads) \
	  $(call bench_opt,ALLOCATORS,allocators) $(call bench_opt,OUT,out) \
	  $(call bench_opt,NICE,nice)

bench-ptag: deps-bench
	$(Q)$(MAKE) --no-print-directory VARIANT=release lib
	$(Q)$(MAKE) --no-print-directory VARIANT=noptag lib
	$(Q)$(MAKE) --no-print-directory bench-bins
	$(Q)$(BENCH_PY) bench/run.py --build $(BUILD) --ptag-ab \
	  $(call bench_opt,RUNS,runs) $(call bench_opt,ITERS,iters) $(call bench_opt,OUT,out) \
	  $(call bench_opt,NICE,nice)

# make exits 2 whenever a recipe fails, so a plain recipe would report a regression (triage exit
# 1) and a broken build (exit 2) alike. For the goal `triage` alone, make therefore runs in
# question mode (-q): `+` lines still run (they build and run triage, with make's flags removed
# from the environment so nothing below inherits -q), and the last line, which is non-empty only
# when triage exited 1, is what makes make itself exit 1 ("something to do"). Exit 2 of triage
# (and 3, inconclusive, which make cannot express) fail the `+` line: make exits 2.
ifeq ($(MAKECMDGOALS),triage)
MAKEFLAGS += -q
endif
TRIAGE_RC = $(BUILD)/triage/exit-status.$(shell echo $$PPID)
TRIAGE_ENV := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES

triage: triage-run
	+@rm -f $(TRIAGE_RC)
	$(if $(filter 1,$(shell cat $(TRIAGE_RC) 2>/dev/null)),@echo "triage: exit 1 (regression)")

triage-run:
	+@$(TRIAGE_ENV) $(MAKE) --no-print-directory BUILD=$(BUILD) bench-bins || exit 2; \
	  mkdir -p $(dir $(TRIAGE_RC)); rc=0; \
	  $(TRIAGE_ENV) $(BENCH_PY) bench/triage.py --build $(BUILD) '$(A)' '$(B)' \
	  $(call bench_opt,WORKLOAD,workload) $(call bench_opt,RUNS,runs) \
	  $(call bench_opt,THRESHOLD,threshold) $(call bench_opt,GATE,gate) \
	  $(call bench_opt,FAIL_ON,gate) $(if $(GATE_WALL),--gate-wall) \
	  $(call bench_opt,RETRIES,retries) $(call bench_opt,SCALE,scale) \
	  $(call bench_opt,ITERS,iters) $(call bench_opt,THREADS,threads) \
	  $(TRIAGE_ARGS) || rc=$$?; \
	  echo $$rc > $(TRIAGE_RC); \
	  if [ $$rc -eq 3 ]; then echo "triage: exit 3 (inconclusive); make exits 2"; fi; \
	  [ $$rc -le 1 ] || { rm -f $(TRIAGE_RC); exit 2; }

# The proof behind docs/bench.md's false-positive and detection figures: PROOF_N (20) identical-
# build triage runs and release/slowfree both ways, under a load generator (bench/triage_proof.sh).
PROOF_N ?= 20
triage-proof: bench-bins slowfree-lib
	$(Q)bash bench/triage_proof.sh -n $(PROOF_N) -b $(BUILD)

# The release sources with a fixed delay on every free (HZ3_TEST_SLOW_FREE_SPINS, libhz3/src/
# config.h): a known regression for triage's own tests (`A=release B=slowfree`). Built in its own
# build folder, so it never mixes with the real variants' objects and VARIANTS stays as it is.
SLOWFREE_SPINS ?= 12
SLOWFREE_BUILD := $(BUILD)/slowfree
slowfree-lib:
	$(Q)mkdir -p $(SLOWFREE_BUILD) && [ "$$(cat $(SLOWFREE_BUILD)/spins 2>/dev/null)" = "$(SLOWFREE_SPINS)" ] \
	  || { rm -rf $(SLOWFREE_BUILD)/obj $(SLOWFREE_BUILD)/lib; echo $(SLOWFREE_SPINS) > $(SLOWFREE_BUILD)/spins; }
	$(Q)$(MAKE) --no-print-directory BUILD=$(SLOWFREE_BUILD) VARIANT=release \
	  HZ3_CPPFLAGS=-DHZ3_TEST_SLOW_FREE_SPINS=$(SLOWFREE_SPINS) lib

fastpath-golden: bench-bins
	$(Q)$(MAKE) --no-print-directory VARIANT=release lib
	$(Q)$(BENCH_PY) bench/fastpath.py update --build $(BUILD)

.PHONY: bench-bins bench-ptag fastpath-golden slowfree-lib triage-run triage-proof
