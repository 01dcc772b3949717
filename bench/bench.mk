# bench/ — benchmark workloads, the interleaved runner (`make bench`), the A/B triage tool
# (`make triage`) and the callgrind fast-path budget. Included by the top-level Makefile; uses its
# BUILD, Q, msg, CXX, WARN, CXXSTD, OPT. The workloads never link libhz3: the allocator under test
# is always chosen with LD_PRELOAD, so one binary serves every allocator and every revision.
#
#   make bench                        every workload x allocator, RUNS=10, into docs/benchmarks/
#   make bench QUICK=1                smoke run (1 run, tiny sizes), into build/bench-quick/
#   make bench-ptag                   PTAG on vs off (seed S12-4D), docs/benchmarks/ptag-ab.md
#   make triage A=noptag B=release    A/B under perf stat, probes and callgrind; exit 1 on regression
#   make fastpath-golden              rewrite bench/fastpath.golden from the current release build
#
# Knobs (make variables or environment): RUNS SCALE ITERS THREADS WORKLOADS ALLOCATORS OUT NICE for
# bench; A B WORKLOAD RUNS THRESHOLD FAIL_ON for triage. docs/bench.md explains each.

BENCH_NAMES := ssot xfree prodcons churn larson realloc aligned fastpath \
               largechurn xthread_small xthread_random idle
BENCH_BINS  := $(addprefix $(BUILD)/bin/bench_,$(BENCH_NAMES))
BENCH_OBJ   := $(BUILD)/obj/bench
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
$(BUILD)/bin/bench_%: bench/%.cc bench/common.h bench/ring.h
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

triage: bench-bins
	$(Q)$(BENCH_PY) bench/triage.py --build $(BUILD) '$(A)' '$(B)' \
	  $(call bench_opt,WORKLOAD,workload) $(call bench_opt,RUNS,runs) \
	  $(call bench_opt,THRESHOLD,threshold) $(call bench_opt,FAIL_ON,fail-on) \
	  $(call bench_opt,SCALE,scale) $(call bench_opt,ITERS,iters) $(call bench_opt,THREADS,threads)

fastpath-golden: bench-bins
	$(Q)$(MAKE) --no-print-directory VARIANT=release lib
	$(Q)$(BENCH_PY) bench/fastpath.py update --build $(BUILD)

.PHONY: bench-bins bench-ptag fastpath-golden
