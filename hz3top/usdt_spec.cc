// Parser and address arithmetic behind usdt_spec.h. The argument grammar is the one gcc's
// <sys/sdt.h> writes on x86-64: SIZE@LOCATION, SIZE in ±1/2/4/8 (negative: signed), LOCATION one
// of %reg, $constant, offset(%reg) or (%reg).
#include "usdt_spec.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace hz3top {

int pt_regs_offset(const std::string& reg) {
  // struct pt_regs on x86-64, in order: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di
  // orig_ax ip cs flags sp ss, 8 bytes each.
  static const struct {
    const char* names[4];
    int offset;
  } REGS[] = {
      {{"rax", "eax", "ax", "al"}, 80},      {{"rbx", "ebx", "bx", "bl"}, 40},
      {{"rcx", "ecx", "cx", "cl"}, 88},      {{"rdx", "edx", "dx", "dl"}, 96},
      {{"rsi", "esi", "si", "sil"}, 104},    {{"rdi", "edi", "di", "dil"}, 112},
      {{"rbp", "ebp", "bp", "bpl"}, 32},     {{"rsp", "esp", "sp", "spl"}, 152},
      {{"r8", "r8d", "r8w", "r8b"}, 72},     {{"r9", "r9d", "r9w", "r9b"}, 64},
      {{"r10", "r10d", "r10w", "r10b"}, 56}, {{"r11", "r11d", "r11w", "r11b"}, 48},
      {{"r12", "r12d", "r12w", "r12b"}, 24}, {{"r13", "r13d", "r13w", "r13b"}, 16},
      {{"r14", "r14d", "r14w", "r14b"}, 8},  {{"r15", "r15d", "r15w", "r15b"}, 0},
      {{"rip", "eip", "ip", "ip"}, 128},
  };
  for (const auto& r : REGS)
    for (const char* n : r.names)
      if (reg == n) return r.offset;
  return -1;
}

namespace {

bool parse_int(const std::string& s, long long* v) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  *v = strtoll(s.c_str(), &end, 0);
  return errno == 0 && end && *end == 0;
}

bool parse_one(const std::string& tok, UsdtArgSpec* a, std::string* err) {
  size_t at = tok.find('@');
  long long size;
  if (at == std::string::npos || !parse_int(tok.substr(0, at), &size) ||
      (std::llabs(size) != 1 && std::llabs(size) != 2 && std::llabs(size) != 4 &&
       std::llabs(size) != 8)) {
    *err = "bad USDT argument size in '" + tok + "'";
    return false;
  }
  a->arg_signed = size < 0;
  a->arg_bitshift = int8_t(64 - 8 * std::llabs(size));
  std::string loc = tok.substr(at + 1);
  if (!loc.empty() && loc[0] == '$') {
    long long v;
    if (!parse_int(loc.substr(1), &v)) {
      *err = "bad USDT constant in '" + tok + "'";
      return false;
    }
    a->arg_type = USDT_ARG_CONST;
    a->val_off = uint64_t(v);
    return true;
  }
  if (!loc.empty() && loc[0] == '%') {
    int off = pt_regs_offset(loc.substr(1));
    if (off < 0) {
      *err = "unknown register in USDT argument '" + tok + "'";
      return false;
    }
    a->arg_type = USDT_ARG_REG;
    a->reg_off = int16_t(off);
    return true;
  }
  size_t open = loc.find("(%");
  if (open != std::string::npos && loc.back() == ')') {
    long long disp = 0;
    if (open > 0 && !parse_int(loc.substr(0, open), &disp)) {
      *err = "unsupported USDT memory operand in '" + tok + "'";
      return false;
    }
    int off = pt_regs_offset(loc.substr(open + 2, loc.size() - open - 3));
    if (off < 0) {
      *err = "unknown register in USDT argument '" + tok + "'";
      return false;
    }
    a->arg_type = USDT_ARG_REG_DEREF;
    a->reg_off = int16_t(off);
    a->val_off = uint64_t(disp);
    return true;
  }
  *err = "unsupported USDT argument '" + tok + "'";
  return false;
}

}  // namespace

bool parse_usdt_args(const std::string& args, UsdtSpec* out, std::string* err) {
  *out = UsdtSpec{};
  std::istringstream in(args);
  std::string tok;
  while (in >> tok) {
    if (out->arg_cnt >= USDT_MAX_ARGS) {
      *err = "more than 12 USDT arguments in '" + args + "'";
      return false;
    }
    if (!parse_one(tok, &out->args[out->arg_cnt], err)) return false;
    out->arg_cnt++;
  }
  return true;
}

bool vaddr_to_offset(const ElfInfo& elf, uint64_t vaddr, uint64_t* offset) {
  for (const LoadSegment& s : elf.loads) {
    if (vaddr < s.vaddr || vaddr >= s.vaddr + s.memsz) continue;
    // A semaphore in .bss would have no bytes in the file, and the kernel could not find it.
    if (vaddr - s.vaddr >= s.filesz) return false;
    *offset = vaddr - s.vaddr + s.offset;
    return true;
  }
  return false;
}

}  // namespace hz3top
