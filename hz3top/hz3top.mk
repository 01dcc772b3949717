# hz3top/ — the live CLI (docs/hz3top.md) and its tests' helpers. Builds:
#   $(BUILD)/bin/hz3top               the tool (needs probes/probes.mk's skeleton)
#   $(BUILD)/tests/hz3top_unit        unit tests of rates and formatting (no BPF, no root)
#   $(BUILD)/tests/hz3top_reader_unit unit tests of the arena reader on a fake arena (no root)
#   $(BUILD)/tests/hz3top_workload    a workload with known operation counts for the tests
#   $(BUILD)/tests/hz3top_heap_sites  a workload with known allocation sites (hz3top heap test),
#                                     and with --leak a leaking service (make demo)
#   $(BUILD)/tests/libhz3top_heap_lib.so  its library without frame pointers
#   $(BUILD)/tests/hz3top_heap_unit   unit tests of the heap view (no BPF, no root)
# The unit tests use libhz3/tests/check.h, the assertion style of every C++ test program.
# Objects under $(BUILD)/obj/hz3top/. Independent of VARIANT: the tool attaches to whichever
# library a process maps.

HZ3TOP_MK := Makefile hz3top/hz3top.mk
HZ3TOP_OBJDIR := $(BUILD)/obj/hz3top
HZ3TOP_BIN := $(BUILD)/bin/hz3top
HZ3TOP_SRCS := main.cc options.cc output.cc ledger_view.cc sparkline.cc session.cc collect_bpf.cc \
               collect_perf.cc proc.cc elf_info.cc tag_census.cc model.cc format.cc tui.cc \
               usdt_spec.cc symbolize.cc openmetrics.cc heap_view.cc heap_options.cc \
               heap_collect.cc heap_model.cc heap_render.cc pprof.cc heap_tui.cc terminal.cc
HZ3TOP_CORE := model.cc output.cc ledger_view.cc sparkline.cc format.cc tag_census.cc usdt_spec.cc \
               elf_info.cc symbolize.cc proc.cc openmetrics.cc
HZ3TOP_OBJS := $(addprefix $(HZ3TOP_OBJDIR)/,$(HZ3TOP_SRCS:.cc=.o))
HZ3TOP_CXXFLAGS := $(CXXSTD) $(OPT) $(WARN) -MMD -MP -Ihz3top -Iprobes -Ilibhz3/include \
                   -I$(PROBES_OBJDIR)
# The project's version, one place: libhz3's pkg-config template. options.o is rebuilt when it changes.
HZ3TOP_VERSION := $(shell sed -n 's/^Version: *//p' libhz3/libhz3.pc.in)
$(HZ3TOP_OBJDIR)/options.o: HZ3TOP_CXXFLAGS += -DHZ3TOP_VERSION='"$(HZ3TOP_VERSION)"'
$(HZ3TOP_OBJDIR)/options.o: libhz3/libhz3.pc.in
HZ3TOP_LIBS := -lbpf -ldw -lelf -lz -lpfm -lncursesw -ltinfo -lpthread
# The skeletons declare usdt.bpf.h's .kconfig flag as C's `_Bool`, which g++ accepts in C++ and
# clang++ does not.
ifeq ($(CXX_IS_CLANG),1)
HZ3TOP_CXXFLAGS += -D_Bool=bool
endif

HZ3TOP_UNIT := $(BUILD)/tests/hz3top_unit
HZ3TOP_WORKLOAD := $(BUILD)/tests/hz3top_workload
HZ3TOP_HEAP_SITES := $(BUILD)/tests/hz3top_heap_sites
HZ3TOP_HEAP_LIB := $(BUILD)/tests/libhz3top_heap_lib.so
HZ3TOP_HEAP_UNIT := $(BUILD)/tests/hz3top_heap_unit
HZ3TOP_HEAP_CORE := heap_model.cc heap_render.cc output.cc pprof.cc symbolize.cc proc.cc elf_info.cc

ALL_TARGETS += $(HZ3TOP_BIN) $(HZ3TOP_UNIT) $(HZ3TOP_WORKLOAD) $(HZ3TOP_HEAP_SITES) $(HZ3TOP_HEAP_LIB) $(HZ3TOP_HEAP_UNIT)

# The skeleton is generated; every object may include it through collect_bpf.cc, so make sure
# it exists before compiling any of them.
$(HZ3TOP_OBJDIR)/%.o: hz3top/%.cc $(HZ3TOP_MK) | $(PROBES_SKEL) $(PROBES_HEAP_SKEL)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(HZ3TOP_CXXFLAGS) -c $< -o $@

$(HZ3TOP_BIN): $(HZ3TOP_OBJS)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(OPT) $^ -o $@ $(HZ3TOP_LIBS)

$(HZ3TOP_OBJDIR)/tests/unit.o: hz3top/tests/unit.cc $(HZ3TOP_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(HZ3TOP_CXXFLAGS) -Ilibhz3/tests -c $< -o $@

$(HZ3TOP_UNIT): $(HZ3TOP_OBJDIR)/tests/unit.o $(addprefix $(HZ3TOP_OBJDIR)/,$(HZ3TOP_CORE:.cc=.o))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(OPT) $^ -o $@ -ldw -lelf

$(HZ3TOP_OBJDIR)/tests/heap_unit.o: hz3top/tests/heap_unit.cc $(HZ3TOP_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(HZ3TOP_CXXFLAGS) -Ilibhz3/tests -c $< -o $@

$(HZ3TOP_HEAP_UNIT): $(HZ3TOP_OBJDIR)/tests/heap_unit.o $(addprefix $(HZ3TOP_OBJDIR)/,$(HZ3TOP_HEAP_CORE:.cc=.o))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(OPT) $^ -o $@ -ldw -lelf -lz

HZ3TOP_READER_UNIT := $(BUILD)/tests/hz3top_reader_unit
ALL_TARGETS += $(HZ3TOP_READER_UNIT)

$(HZ3TOP_OBJDIR)/tests/reader_unit.o: hz3top/tests/reader_unit.cc $(HZ3TOP_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(HZ3TOP_CXXFLAGS) -Ilibhz3/tests -c $< -o $@

$(HZ3TOP_READER_UNIT): $(HZ3TOP_OBJDIR)/tests/reader_unit.o $(addprefix $(HZ3TOP_OBJDIR)/,$(HZ3TOP_CORE:.cc=.o))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(OPT) $^ -o $@ -ldw -lelf

# The workload is an ordinary program: the tests run it with LD_PRELOAD=$(HZ3_LIB).
$(HZ3TOP_WORKLOAD): hz3top/tests/workload.cc $(HZ3TOP_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(CXXSTD) $(OPT) $(WARN) $< -o $@ -lpthread

# Without frame pointers, the executable and its library alike: sampled stacks reach each site
# function only through DWARF unwinding. No builtins: every malloc must reach the library (-O1
# keeps the loops from being folded away). -g: the test checks source lines and inlined frames.
$(HZ3TOP_HEAP_LIB): hz3top/tests/heap_sites_lib.cc hz3top/tests/heap_sites_lib.h $(HZ3TOP_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(CXXSTD) -O2 -g -fomit-frame-pointer -fno-builtin -fPIC -shared $(WARN) $< -o $@

$(HZ3TOP_HEAP_SITES): hz3top/tests/heap_sites.cc hz3top/tests/heap_sites_lib.h $(HZ3TOP_HEAP_LIB) $(HZ3TOP_MK)
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(CXXSTD) -O1 -g -fomit-frame-pointer -fno-builtin $(WARN) -Ihz3top/tests $< -o $@ \
	  -L$(@D) -lhz3top_heap_lib -Wl,-rpath,'$$ORIGIN'

.PHONY: hz3top
hz3top: $(HZ3TOP_BIN)

-include $(HZ3TOP_OBJS:.o=.d) $(HZ3TOP_OBJDIR)/tests/unit.d $(HZ3TOP_OBJDIR)/tests/heap_unit.d \
  $(HZ3TOP_OBJDIR)/tests/reader_unit.d
