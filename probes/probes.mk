# probes/ — the BPF programs hz3top loads. Builds, all under $(BUILD)/obj/probes/:
#   hz3.bpf.o     clang -target bpf
#   hz3.skel.h    bpftool gen skeleton (never committed); hz3top.mk includes it via PROBES_SKEL
#   heap.bpf.o, heap.skel.h   the same for heap.bpf.c (hz3top heap), via PROBES_HEAP_SKEL
# The programs include Linux UAPI headers and libbpf's bpf_helpers.h/bpf_tracing.h/usdt.bpf.h,
# not a vmlinux.h: they use no kernel type, so the build needs no kernel BTF
# (/sys/kernel/btf/vmlinux) on the build host.
# The BPF object does not depend on the library variant, so it lives once per build folder.

PROBES_MK := Makefile probes/probes.mk
PROBES_OBJDIR := $(BUILD)/obj/probes
PROBES_BPF_OBJ := $(PROBES_OBJDIR)/hz3.bpf.o
PROBES_SKEL := $(PROBES_OBJDIR)/hz3.skel.h
PROBES_HEAP_OBJ := $(PROBES_OBJDIR)/heap.bpf.o
PROBES_HEAP_SKEL := $(PROBES_OBJDIR)/heap.skel.h

# The target's architecture, which bpf_tracing.h needs to name struct pt_regs' registers
# (__TARGET_ARCH_x86, …), and its multiarch folder, where Debian keeps the asm/ UAPI headers
# that clang -target bpf does not search. Both come from the C compiler the rest is built with
# (-print-multiarch: x86_64-linux-gnu under gcc and clang alike), not from the build host.
PROBES_MULTIARCH := $(or $(shell $(CC) -print-multiarch 2>/dev/null),x86_64-linux-gnu)
PROBES_ARCH := $(shell echo $(PROBES_MULTIARCH) | sed -e 's/-.*//' -e 's/^x86_64$$/x86/' \
  -e 's/^i.86$$/x86/' -e 's/^aarch64$$/arm64/' -e 's/^arm.*/arm/' -e 's/^s390x$$/s390/' \
  -e 's/^powerpc.*/powerpc/' -e 's/^riscv.*/riscv/' -e 's/^mips.*/mips/')
PROBES_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(PROBES_ARCH) -Wall -Wno-unused-function \
                 -Iprobes -idirafter /usr/include/$(PROBES_MULTIARCH)

ALL_TARGETS += $(PROBES_SKEL) $(PROBES_HEAP_SKEL)

$(PROBES_BPF_OBJ): probes/hz3.bpf.c probes/hz3_events.h $(PROBES_MK)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(PROBES_CFLAGS) -c $< -o $@

$(PROBES_SKEL): $(PROBES_BPF_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name hz3_bpf > $@.tmp && mv $@.tmp $@

$(PROBES_HEAP_OBJ): probes/heap.bpf.c probes/heap_events.h $(PROBES_MK)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(PROBES_CFLAGS) -c $< -o $@

$(PROBES_HEAP_SKEL): $(PROBES_HEAP_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name heap_bpf > $@.tmp && mv $@.tmp $@

.PHONY: probes
probes: $(PROBES_SKEL) $(PROBES_HEAP_SKEL)
