# libhz3: the allocator, built per VARIANT into $(VDIR)/lib/{libhz3.so,libhz3.a}.
# Hidden visibility (only the API is exported), initial-exec TLS, no exceptions or RTTI except
# in new.cc (operator new must throw std::bad_alloc), and no builtin malloc folding: gcc would
# turn malloc+memset inside calloc back into a call to calloc.

LIBHZ3_SRC := $(wildcard libhz3/src/*.cc)
LIBHZ3_INC := -Ilibhz3/include -Ilibhz3/src
LIBHZ3_OBJDIR := $(VDIR)/obj/libhz3
LIBHZ3_OBJ := $(patsubst libhz3/src/%.cc,$(LIBHZ3_OBJDIR)/%.o,$(LIBHZ3_SRC))
LIBHZ3_SO := $(VDIR)/lib/libhz3.so
LIBHZ3_A := $(VDIR)/lib/libhz3.a

VARIANT_DEFS_release  :=
VARIANT_DEFS_check    := -DHZ3_CHECK=1
VARIANT_DEFS_noprobes := -DHZ3_PROBES=0
VARIANT_DEFS_noptag   := -DHZ3_SMALL_V2_PTAG_ENABLE=0
VARIANT_DEFS_hardened := -DHZ3_HARDENED=1
VARIANT_DEFS_magall   := -DHZ3_MAG_MIN_SIZE=1 -DHZ3_CACHE_MAX_OBJS=256

LIBHZ3_MK := Makefile libhz3/libhz3.mk
LIBHZ3_CXXFLAGS := $(CXXSTD) $(OPT) $(WARN) -fPIC -fvisibility=hidden -fvisibility-inlines-hidden \
  -ftls-model=initial-exec -fno-rtti -fno-exceptions -fno-plt -fno-semantic-interposition \
  -fno-omit-frame-pointer -momit-leaf-frame-pointer \
  -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
  -fno-stack-protector $(CXX_CONSTEXPR_LIMIT) \
  $(LIBHZ3_INC) $(VARIANT_DEFS_$(VARIANT)) $(HZ3_CPPFLAGS)

lib: $(LIBHZ3_SO) $(LIBHZ3_A)
ALL_TARGETS += $(LIBHZ3_SO) $(LIBHZ3_A)

$(LIBHZ3_OBJDIR)/new.o: EXTRA_FLAGS := -fexceptions
$(LIBHZ3_OBJDIR)/%.o: libhz3/src/%.cc $(LIBHZ3_MK)
	@mkdir -p $(@D)
	$(call msg,CXX,$@)
	$(Q)$(CXX) $(LIBHZ3_CXXFLAGS) $(EXTRA_FLAGS) -MMD -MP -c $< -o $@

$(LIBHZ3_SO): $(LIBHZ3_OBJ)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CXX) -shared -Wl,-soname,libhz3.so -Wl,-z,now -Wl,--no-undefined -o $@ $^ -lm -lpthread

$(LIBHZ3_A): $(LIBHZ3_OBJ)
	@mkdir -p $(@D)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

-include $(LIBHZ3_OBJ:.o=.d)

# install: library, public header, pkg-config file (honours PREFIX and DESTDIR).
install: $(LIBHZ3_SO) $(LIBHZ3_A)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/hz3 $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(LIBHZ3_SO) $(DESTDIR)$(PREFIX)/lib/libhz3.so
	install -m 644 $(LIBHZ3_A) $(DESTDIR)$(PREFIX)/lib/libhz3.a
	install -m 644 libhz3/include/hz3/hz3.h $(DESTDIR)$(PREFIX)/include/hz3/hz3.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' libhz3/libhz3.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libhz3.pc
	@if [ -x $(BUILD)/bin/hz3top ]; then install -d $(DESTDIR)$(PREFIX)/bin && \
	  install -m 755 $(BUILD)/bin/hz3top $(DESTDIR)$(PREFIX)/bin/hz3top; fi

# Internal unit tests (libhz3/unit/), one binary per variant, linked against that variant's
# static library. `make test` builds all variants, then `make all` builds these.
UNIT_BINS := $(foreach v,$(VARIANTS),$(BUILD)/tests/unit_test_$(v))
ALL_TARGETS += $(if $(filter release,$(VARIANT)),$(UNIT_BINS))
$(BUILD)/tests/unit_test_%: libhz3/unit/unit_test.cc libhz3/tests/check.h FORCE_VARIANT_LIB
	@mkdir -p $(@D)
	$(call msg,CXX,$@)
	$(Q)$(MAKE) --no-print-directory VARIANT=$* lib >/dev/null
	$(Q)$(CXX) $(CXXSTD) -O1 -g $(WARN) -fno-builtin $(LIBHZ3_INC) -Ilibhz3/tests $(VARIANT_DEFS_$*) $(HZ3_CPPFLAGS) \
	  $(CXX_CONSTEXPR_LIMIT) $< -o $@ \
	  $(if $(filter release,$*),$(BUILD),$(BUILD)/$*)/lib/libhz3.a -lpthread
.PHONY: FORCE_VARIANT_LIB
FORCE_VARIANT_LIB:

docs-classes: libhz3/tools/print_classes.cc libhz3/src/sizeclass.h $(LIBHZ3_MK)
	@mkdir -p $(BUILD)/tests
	$(Q)$(CXX) $(CXXSTD) -O1 $(LIBHZ3_INC) $(CXX_CONSTEXPR_LIMIT) $< -o $(BUILD)/tests/print_classes
	$(Q)$(BUILD)/tests/print_classes > docs/size-classes.md
.PHONY: docs-classes

# libhz3/tests/fixed_arena_block_*: test programs with a page of their own where the fixed layout
# (src/arena.h) puts the arena or its tag array, so hz3 must fall back to the dynamic one. Not
# position-independent, so the section stays at that address.
$(BUILD)/tests/fixed_arena_block_base: HZ3_TESTS_LDLIBS += -no-pie -Wl,--section-start=.hz3_block=0x40000000000
$(BUILD)/tests/fixed_arena_block_tags: HZ3_TESTS_LDLIBS += -no-pie -Wl,--section-start=.hz3_block=0x100000000
$(BUILD)/tests/fixed_arena_block_base $(BUILD)/tests/fixed_arena_block_tags: libhz3/tests/fixed_arena.cc
