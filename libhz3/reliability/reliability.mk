# libhz3/reliability — fuzzing, sanitizers, long stress, real services, limits, and the test suite
# against VARIANT=check. Included by the top-level Makefile; uses its BUILD, Q, msg, CXX, CXXSTD,
# WARN, LIBHZ3_INC, LIBHZ3_CXXFLAGS, ALL_TARGETS. Everything is built under $(BUILD)/reliability/
# except the LD_PRELOAD test programs, which go to $(BUILD)/tests/rel_* like every test program.
# docs/reliability.md explains each part and its numbers.
#
#   make test-check            the libhz3 test scripts with every library path on the check build
#   make fuzz                  differential libFuzzer run, FUZZ_SECONDS (default 300) per build
#   make sanitize              unit + stress tests + rel_san_mt under TSan and UBSan, every case
#   make stress                long multi-threaded stress with fork and RSS bound, STRESS_SECONDS
#   make test-compat           every real-service case (make test runs a fast subset)
#   make misuse                the heap-misuse table with every allocator found here, written to
#                              docs/reliability-misuse.md (make test runs t_misuse.sh, hz3 only)
#
# The sanitizer and fuzz builds compile libhz3/src/*.cc except new.cc (operator new would need
# exceptions and would interpose) with -DHZ3_API_PREFIX: the entry points become hz3_malloc, …,
# nothing is interposed, and the sanitizer's own allocator serves the test program while the
# sanitizer instruments hz3's code. clang is required for all of them (libFuzzer, TSan).

REL_DIR := libhz3/reliability
# Every object here depends on the makefiles that set its flags; the arena1g library also uses
# libhz3.mk's LIBHZ3_CXXFLAGS.
REL_MK := Makefile $(REL_DIR)/reliability.mk
REL_OUT := $(BUILD)/reliability
REL_CLANGXX ?= clang++
FUZZ_SECONDS ?= 300
STRESS_SECONDS ?= 180

REL_CORE_SRC := $(filter-out libhz3/src/new.cc,$(wildcard libhz3/src/*.cc))
# -O1 keeps sanitizer runs fast and stacks readable; the flags otherwise follow libhz3.mk.
REL_CORE_FLAGS := $(CXXSTD) -O1 -g -fno-omit-frame-pointer -fno-exceptions -fno-rtti \
  -ftls-model=initial-exec -fvisibility=hidden -fconstexpr-steps=100000000 -DHZ3_API_PREFIX \
  $(LIBHZ3_INC) $(WARN) -Wno-unneeded-internal-declaration
REL_UBSAN := -fsanitize=undefined,implicit-conversion,local-bounds,nullability,float-divide-by-zero \
  -fno-sanitize-recover=all

# One core library per flavour: sanitizer flags and the variant's -D flags.
#   fuzz       ASan + libFuzzer coverage, release configuration
#   fuzzcheck  the same with HZ3_CHECK=1 (bitmaps, poisoning) and every assertion level,
#              expensive ones included (HZ3_ASSERT_LEVEL=3, libhz3/src/util.h)
#   tsan       ThreadSanitizer, release configuration (what ships)
#   ubsan      UBSan, check configuration (a superset of the release code paths)
REL_FLAVORS := fuzz fuzzcheck tsan ubsan
REL_SAN_fuzz := -fsanitize=fuzzer-no-link,address
REL_SAN_fuzzcheck := -fsanitize=fuzzer-no-link,address
REL_SAN_tsan := -fsanitize=thread
REL_SAN_ubsan := $(REL_UBSAN)
REL_DEF_fuzz :=
REL_DEF_fuzzcheck := -DHZ3_CHECK=1 -DHZ3_ASSERT_LEVEL=3
REL_DEF_tsan :=
REL_DEF_ubsan := -DHZ3_CHECK=1

define REL_CORE_RULES
REL_CORE_OBJ_$(1) := $$(patsubst libhz3/src/%.cc,$(REL_OUT)/obj/$(1)/%.o,$(REL_CORE_SRC))
$(REL_OUT)/obj/$(1)/%.o: libhz3/src/%.cc $(REL_MK)
	$$(call msg,CLANG,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$(REL_CLANGXX) $(REL_CORE_FLAGS) $(REL_SAN_$(1)) $(REL_DEF_$(1)) -MMD -MP -c $$< -o $$@
$(REL_OUT)/$(1)/libhz3core.a: $$(REL_CORE_OBJ_$(1))
	$$(call msg,AR,$$@)
	$(Q)mkdir -p $$(@D) && rm -f $$@ && ar rcs $$@ $$^
-include $$(REL_CORE_OBJ_$(1):.o=.d)
endef
$(foreach f,$(REL_FLAVORS),$(eval $(call REL_CORE_RULES,$(f))))

# ---- fuzz target ---------------------------------------------------------------------------------
REL_FUZZ_BINS := $(REL_OUT)/fuzz_diff $(REL_OUT)/fuzz_diff_check
REL_FUZZ_FLAGS := $(CXXSTD) -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address -I$(REL_DIR)
$(REL_OUT)/fuzz_diff: $(REL_DIR)/fuzz_diff.cc $(REL_DIR)/hz3_prefixed.h $(REL_OUT)/fuzz/libhz3core.a $(REL_MK)
	$(call msg,CLANG,$@)
	$(Q)$(REL_CLANGXX) $(REL_FUZZ_FLAGS) $< $(REL_OUT)/fuzz/libhz3core.a -o $@ -lpthread
$(REL_OUT)/fuzz_diff_check: $(REL_DIR)/fuzz_diff.cc $(REL_DIR)/hz3_prefixed.h $(REL_OUT)/fuzzcheck/libhz3core.a \
    $(REL_MK)
	$(call msg,CLANG,$@)
	$(Q)$(REL_CLANGXX) $(REL_FUZZ_FLAGS) $< $(REL_OUT)/fuzzcheck/libhz3core.a -o $@ -lpthread

# ---- sanitizer harness: the project's unit and stress tests, and rel_san_mt ----------------------
# unit_test.cc and stress_test.cc are written against malloc/free; redirect.h renames their calls
# to the prefixed entry points after every system header has been read.
REL_SAN_PROGS := unit_test stress_test san_mt
REL_SAN_BINS := $(foreach f,tsan ubsan,$(addprefix $(REL_OUT)/$(f)/,$(REL_SAN_PROGS)))
REL_SAN_TFLAGS := $(CXXSTD) -O1 -g -fno-omit-frame-pointer -fno-builtin -pthread \
  -fconstexpr-steps=100000000 -I$(REL_DIR) $(LIBHZ3_INC) -Ilibhz3/tests -Wno-unused-command-line-argument

define REL_SAN_RULES
$(REL_OUT)/$(1)/unit_test: libhz3/unit/unit_test.cc libhz3/tests/check.h $(REL_DIR)/redirect.h $(REL_OUT)/$(1)/libhz3core.a $(REL_MK)
	$$(call msg,CLANG,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$(REL_CLANGXX) $(REL_SAN_TFLAGS) $(REL_SAN_$(1)) $(REL_DEF_$(1)) -include $(REL_DIR)/redirect.h \
	  $$< $(REL_OUT)/$(1)/libhz3core.a -o $$@ -ldl
$(REL_OUT)/$(1)/stress_test: libhz3/tests/stress_test.cc libhz3/tests/check.h $(REL_DIR)/redirect.h \
    $(REL_OUT)/$(1)/libhz3core.a $(REL_MK)
	$$(call msg,CLANG,$$@)
	$(Q)$(REL_CLANGXX) $(REL_SAN_TFLAGS) $(REL_SAN_$(1)) -include $(REL_DIR)/redirect.h \
	  $$< $(REL_OUT)/$(1)/libhz3core.a -o $$@ -ldl
$(REL_OUT)/$(1)/san_mt: $(REL_DIR)/san_mt.cc $(REL_DIR)/hz3_prefixed.h $(REL_OUT)/$(1)/libhz3core.a $(REL_MK)
	$$(call msg,CLANG,$$@)
	$(Q)$(REL_CLANGXX) $(REL_SAN_TFLAGS) $(REL_SAN_$(1)) $$< $(REL_OUT)/$(1)/libhz3core.a -o $$@ -ldl
endef
$(foreach f,tsan ubsan,$(eval $(call REL_SAN_RULES,$(f))))

# ---- LD_PRELOAD programs (built like libhz3/tests: linked normally, never against libhz3) --------
REL_TEST_CXXFLAGS := $(CXXSTD) -O1 -g -fno-builtin $(CXX_NO_ALLOC_DCE) -fno-omit-frame-pointer \
  $(WARN) $(WARN_MISUSE) -Ilibhz3/include -Ilibhz3/tests -pthread
REL_PRELOAD_BINS := $(BUILD)/tests/rel_stress $(BUILD)/tests/rel_limits $(BUILD)/tests/rel_regress
$(BUILD)/tests/rel_%: $(REL_DIR)/%.cc libhz3/tests/check.h $(REL_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(REL_TEST_CXXFLAGS) $< -o $@ -pthread -ldl

# A plugin the limits test dlopens after start: it allocates in its constructor, in dynamic TLS
# and through its exported functions, and frees in its destructor.
REL_PLUGIN := $(REL_OUT)/librel_plugin.so
$(REL_PLUGIN): $(REL_DIR)/plugin.cc $(REL_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(CXXSTD) -O1 -g -fPIC -shared -fno-builtin $(WARN) $< -o $@ -pthread

# libhz3 with a 1 GiB arena (release flags otherwise), to exhaust the arena in seconds.
REL_ARENA1G_OBJ := $(patsubst libhz3/src/%.cc,$(REL_OUT)/obj/arena1g/%.o,$(wildcard libhz3/src/*.cc))
REL_ARENA1G := $(REL_OUT)/arena1g/libhz3.so
REL_ARENA1G_FLAGS = $(filter-out $(VARIANT_DEFS_$(VARIANT)),$(LIBHZ3_CXXFLAGS)) -DHZ3_ARENA_GIB=1
$(REL_OUT)/obj/arena1g/new.o: REL_EXTRA := -fexceptions
$(REL_OUT)/obj/arena1g/%.o: libhz3/src/%.cc $(REL_MK) $(LIBHZ3_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(REL_ARENA1G_FLAGS) $(REL_EXTRA) -MMD -MP -c $< -o $@
$(REL_ARENA1G): $(REL_ARENA1G_OBJ)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) -shared -Wl,-soname,libhz3.so -Wl,-z,now -Wl,--no-undefined -o $@ $^ -lpthread
-include $(REL_ARENA1G_OBJ:.o=.d)

REL_ALL := $(REL_FUZZ_BINS) $(REL_SAN_BINS) $(REL_PRELOAD_BINS) $(REL_PLUGIN) $(REL_ARENA1G)
ALL_TARGETS += $(if $(filter release,$(VARIANT)),$(REL_ALL))

.PHONY: reliability test-check fuzz sanitize stress test-compat misuse
reliability: $(REL_ALL)

# The runner's environment for scripts started outside it.
REL_ENV = HZ3_TOP=$(CURDIR) HZ3_BUILD=$(abspath $(BUILD)) HZ3_TBIN=$(abspath $(BUILD))/tests \
  HZ3_BIN=$(abspath $(BUILD))/bin HZ3_REL_OUT=$(abspath $(REL_OUT))

fuzz: $(REL_FUZZ_BINS)
	$(Q)$(REL_ENV) REL_FUZZ_SECONDS=$(FUZZ_SECONDS) REL_FUZZ_KEEP=1 bash $(REL_DIR)/t_fuzz.sh

sanitize: $(REL_SAN_BINS)
	$(Q)$(REL_ENV) REL_SAN_FULL=1 bash $(REL_DIR)/t_sanitizers.sh

stress: lib $(REL_PRELOAD_BINS)
	$(Q)$(MAKE) --no-print-directory VARIANT=check lib
	$(Q)$(REL_ENV) REL_STRESS_SECONDS=$(STRESS_SECONDS) bash $(REL_DIR)/t_longstress.sh

test-compat: deps-test lib $(BUILD)/tests/maps_watch
	$(Q)$(REL_ENV) REL_COMPAT=full bash $(REL_DIR)/t_compat.sh

# The misuse program is built by the runner itself (gcc -O0 -fno-builtin, no sanitizer); every
# cell, with how it was caught and the allocator's message, goes to $(REL_OUT)/misuse/results.json.
# A library that is not there (hz3 hardened before it exists, a peer not installed) is skipped,
# and the page says so.
misuse: lib
	$(Q)$(MAKE) --no-print-directory VARIANT=check lib
	$(Q)python3 $(REL_DIR)/misuse/run.py --build-root $(abspath $(BUILD)) \
	  --out $(abspath $(REL_OUT))/misuse --json $(abspath $(REL_OUT))/misuse/results.json \
	  --markdown docs/reliability-misuse.md
	@echo "misuse: wrote docs/reliability-misuse.md"

# `make test-check`: the same test scripts, with HZ3_LIB and every variant path pointing at the
# check build. scripts/run-tests.sh derives every path from BUILD, so the run gets a build folder
# of its own whose lib/, noprobes/ and noptag/ lead to check/; the tests' result names keep their
# variant labels (api/release/… is the check library here).
REL_ASCHECK := $(REL_OUT)/as-check
test-check: deps-test
	$(Q)$(MAKE) --no-print-directory variants
	$(Q)$(MAKE) --no-print-directory all
	$(Q)rm -rf $(REL_ASCHECK) && mkdir -p $(REL_ASCHECK)/noprobes $(REL_ASCHECK)/noptag
	$(Q)b=$(abspath $(BUILD)); ln -s $$b/check/lib $(REL_ASCHECK)/lib; \
	  ln -s $$b/check $(REL_ASCHECK)/check; ln -s $$b/check/lib $(REL_ASCHECK)/noprobes/lib; \
	  ln -s $$b/check/lib $(REL_ASCHECK)/noptag/lib; ln -s $$b/tests $(REL_ASCHECK)/tests; \
	  ln -s $$b/bin $(REL_ASCHECK)/bin
	@echo "test-check: every library path leads to $(BUILD)/check/lib/libhz3.so"
	$(Q)BUILD=$(REL_ASCHECK) HZ3_REL_OUT=$(abspath $(REL_OUT)) bash scripts/run-tests.sh \
	  libhz3/tests/ libhz3/reliability/t_limits libhz3/reliability/t_compat \
	  libhz3/reliability/t_longstress
