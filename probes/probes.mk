# probes/ — the BPF programs hz3top loads. Builds, all under $(BUILD)/obj/probes/:
#   vmlinux.h     from the running kernel's BTF (never committed)
#   hz3.bpf.o     clang -target bpf
#   hz3.skel.h    bpftool gen skeleton (never committed); hz3top.mk includes it via PROBES_SKEL
#   heap.bpf.o, heap.skel.h   the same for heap.bpf.c (hz3top heap), via PROBES_HEAP_SKEL
# The BPF object does not depend on the library variant, so it lives once per build folder.

PROBES_OBJDIR := $(BUILD)/obj/probes
PROBES_VMLINUX := $(PROBES_OBJDIR)/vmlinux.h
PROBES_BPF_OBJ := $(PROBES_OBJDIR)/hz3.bpf.o
PROBES_SKEL := $(PROBES_OBJDIR)/hz3.skel.h
PROBES_HEAP_OBJ := $(PROBES_OBJDIR)/heap.bpf.o
PROBES_HEAP_SKEL := $(PROBES_OBJDIR)/heap.skel.h
PROBES_BTF ?= /sys/kernel/btf/vmlinux

# clang -target bpf does not search the multiarch folder, where Debian keeps asm/ headers.
PROBES_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
PROBES_MULTIARCH := $(shell $(CC) -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
PROBES_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(PROBES_ARCH) -Wall -Wno-unused-function \
                 -I$(PROBES_OBJDIR) -Iprobes -idirafter /usr/include/$(PROBES_MULTIARCH)

ALL_TARGETS += $(PROBES_SKEL) $(PROBES_HEAP_SKEL)

$(PROBES_VMLINUX):
	$(call msg,BTF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)test -r $(PROBES_BTF) || { echo "hz3: $(PROBES_BTF) missing: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file $(PROBES_BTF) format c > $@.tmp && mv $@.tmp $@

$(PROBES_BPF_OBJ): probes/hz3.bpf.c probes/hz3_events.h $(PROBES_VMLINUX)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(PROBES_CFLAGS) -c $< -o $@

$(PROBES_SKEL): $(PROBES_BPF_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name hz3_bpf > $@.tmp && mv $@.tmp $@

$(PROBES_HEAP_OBJ): probes/heap.bpf.c probes/heap_events.h $(PROBES_VMLINUX)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(PROBES_CFLAGS) -c $< -o $@

$(PROBES_HEAP_SKEL): $(PROBES_HEAP_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name heap_bpf > $@.tmp && mv $@.tmp $@

.PHONY: probes
probes: $(PROBES_SKEL) $(PROBES_HEAP_SKEL)
