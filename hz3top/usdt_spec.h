// USDT argument specs ("8@%rdi -4@$5 4@8(%rbx)", from .note.stapsdt) turned into the records
// that libbpf's usdt.bpf.h reads in the kernel (struct __bpf_usdt_spec), and probe addresses
// turned into file offsets. hz3top needs both to attach through uprobe_multi links, which libbpf
// 1.1 does not offer for USDT. x86-64 only; not a general USDT library.
#pragma once

#include <cstdint>
#include <string>

#include "elf_info.h"

namespace hz3top {

// Mirrors of usdt.bpf.h's __bpf_usdt_arg_spec / __bpf_usdt_spec (libbpf 1.1), which the BPF
// side reads from the __bpf_usdt_specs map by spec id (the attach cookie).
enum UsdtArgType : uint32_t { USDT_ARG_CONST = 0, USDT_ARG_REG = 1, USDT_ARG_REG_DEREF = 2 };
struct UsdtArgSpec {
  uint64_t val_off = 0;  // the constant, or the offset added to the register before the load
  uint32_t arg_type = USDT_ARG_CONST;
  int16_t reg_off = 0;  // offset of the register in struct pt_regs
  bool arg_signed = false;
  int8_t arg_bitshift = 0;  // 64 - 8 * size: clears (or sign-extends) what is above the value
};
constexpr int USDT_MAX_ARGS = 12;
struct UsdtSpec {
  UsdtArgSpec args[USDT_MAX_ARGS];
  uint64_t usdt_cookie = 0;
  int16_t arg_cnt = 0;
};
static_assert(sizeof(UsdtArgSpec) == 16 && sizeof(UsdtSpec) == 208,
              "must match struct __bpf_usdt_spec of libbpf's usdt.bpf.h");

// Parses a whole argument string. False with `err` on anything it does not know.
bool parse_usdt_args(const std::string& args, UsdtSpec* out, std::string* err);
// Offset of a register (any width: rax, eax, ax, al, r8d, …) in x86-64 struct pt_regs; -1 if
// unknown.
int pt_regs_offset(const std::string& reg);
// File offset of link-time address `vaddr` through the PT_LOAD segment that contains it.
bool vaddr_to_offset(const ElfInfo& elf, uint64_t vaddr, uint64_t* offset);

}  // namespace hz3top
