# libhz3 test programs (included by the top-level Makefile). Each libhz3/tests/<name>.cc is one
# ordinary executable, $(BUILD)/tests/<name>, linked normally and NOT against libhz3: the
# t_*.sh scripts run it with LD_PRELOAD=<variant>/libhz3.so, so the same binary also runs under
# glibc. This fragment builds programs only; the scripts decide what runs against which variant.

HZ3_TESTS_SRC  := $(wildcard libhz3/tests/*.cc)
HZ3_TESTS_BINS := $(patsubst libhz3/tests/%.cc,$(BUILD)/tests/%,$(HZ3_TESTS_SRC))
HZ3_TESTS_OBJ  := $(BUILD)/obj/tests
HZ3_TESTS_MK   := Makefile libhz3/tests/tests.mk

# -O1 keeps the programs fast enough for the stress cases; -fno-builtin and CXX_NO_ALLOC_DCE
# stop the compiler from eliding malloc/free and new/delete pairs or folding what the tests
# measure (malloc_usable_size, calloc zeroing). WARN_MISUSE silences warnings about the misuse the
# tests commit on purpose (freeing a stack address, requesting SIZE_MAX bytes).
HZ3_TESTS_CXXFLAGS := $(CXXSTD) -O1 -g -fno-builtin $(CXX_NO_ALLOC_DCE) -fno-omit-frame-pointer \
  $(WARN) $(WARN_MISUSE) -Ilibhz3/include -pthread
HZ3_TESTS_LDLIBS := -pthread -ldl

$(HZ3_TESTS_BINS): $(BUILD)/tests/%: libhz3/tests/%.cc $(HZ3_TESTS_MK)
	$(call msg,CXX,$@)
	@mkdir -p $(@D) $(HZ3_TESTS_OBJ)
	$(Q)$(CXX) $(HZ3_TESTS_CXXFLAGS) -MMD -MP -MF $(HZ3_TESTS_OBJ)/$*.d -MT $@ $< -o $@ \
	  $(HZ3_TESTS_LDLIBS)

-include $(wildcard $(HZ3_TESTS_OBJ)/*.d)

.PHONY: libhz3-tests
libhz3-tests: $(HZ3_TESTS_BINS)

ALL_TARGETS += $(HZ3_TESTS_BINS)
