// libelf-based symbolizer behind symbolize.h.
#include "symbolize.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hz3top {

std::string demangle(const std::string& name) {
  if (name.compare(0, 2, "_Z") != 0) return name;
  int status = 0;
  char* d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (!d) return name;
  std::string out(d);
  free(d);
  return out;
}

std::string Frame::label() const {
  char buf[64];
  if (!func.empty() && func[0] == '[') return func;  // a placeholder such as "[stack lost]"
  if (!func.empty()) {
    snprintf(buf, sizeof buf, "+0x%llx", static_cast<unsigned long long>(off));
    return func + buf + (lib.empty() ? "" : " (" + lib + ")");
  }
  // Without a symbol, the link-time address in the file: the same in every run (no ASLR).
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(lib.empty() ? addr : off));
  return "[" + (lib.empty() ? "" : lib + " ") + buf + "]";
}

bool SymbolTable::load(const std::string& path, std::string* err) {
  syms_.clear();
  loads_.clear();
  if (elf_version(EV_CURRENT) == EV_NONE) {
    *err = "failed to initialise libelf: " + std::string(elf_errmsg(-1));
    return false;
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = "failed to open ELF file " + path + ": " + strerror(errno);
    return false;
  }
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  if (!elf || elf_kind(elf) != ELF_K_ELF) {
    if (elf) elf_end(elf);
    close(fd);
    *err = "failed to open ELF file " + path + ": not an ELF file";
    return false;
  }
  size_t nphdr = 0;
  if (elf_getphdrnum(elf, &nphdr) == 0)
    for (size_t i = 0; i < nphdr; i++) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, int(i), &ph) && ph.p_type == PT_LOAD)
        loads_.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_flags});
    }
  // .symtab has the static functions too (the application's own sites usually are); .dynsym is
  // what a stripped file still has. Read both; duplicates collapse below.
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) continue;
    size_t count = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < count; i++) {
      GElf_Sym sym;
      if (!gelf_getsym(data, int(i), &sym) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
        continue;
      int type = GELF_ST_TYPE(sym.st_info);
      if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
      const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
      if (!name || !*name) continue;
      syms_.push_back({sym.st_value, sym.st_size, name});
    }
  }
  elf_end(elf);
  close(fd);
  // Aliases share an address; prefer a global-looking name (no leading underscore) for stability.
  std::sort(syms_.begin(), syms_.end(), [](const Sym& a, const Sym& b) {
    if (a.addr != b.addr) return a.addr < b.addr;
    return (a.name[0] == '_') < (b.name[0] == '_');
  });
  syms_.erase(std::unique(syms_.begin(), syms_.end(),
                          [](const Sym& a, const Sym& b) { return a.addr == b.addr; }),
              syms_.end());
  for (Sym& s : syms_) s.name = demangle(s.name);
  return true;
}

const std::string* SymbolTable::find(uint64_t vaddr, uint64_t* start) const {
  auto it = std::upper_bound(syms_.begin(), syms_.end(), vaddr,
                             [](uint64_t v, const Sym& s) { return v < s.addr; });
  if (it == syms_.begin()) return nullptr;
  --it;
  // A sized symbol must cover the address; an unsized one (hand-written assembly) is taken as
  // reaching up to the next symbol.
  if (it->size && vaddr >= it->addr + it->size) return nullptr;
  *start = it->addr;
  return &it->name;
}

bool SymbolTable::offset_to_vaddr(uint64_t off, uint64_t* vaddr) const {
  for (const LoadSegment& l : loads_)
    if (off >= l.offset && off < l.offset + l.filesz) {
      *vaddr = off - l.offset + l.vaddr;
      return true;
    }
  return false;
}

bool Symbolizer::refresh(std::string* err) { return read_maps(pid_, &maps_, err); }

Frame Symbolizer::resolve(uint64_t addr, bool ret) {
  Frame f;
  f.addr = addr;
  if (maps_.empty()) {
    std::string err;
    refresh(&err);
  }
  uint64_t look = ret && addr ? addr - 1 : addr;
  const Mapping* m = nullptr;
  for (const Mapping& x : maps_)
    if (look >= x.start && look < x.end) {
      m = &x;
      break;
    }
  if (!m || m->path.empty() || m->path[0] != '/') return f;
  size_t slash = m->path.rfind('/');
  f.lib = m->path.substr(slash + 1);
  auto& table = tables_[m->path];
  if (!table) {
    auto t = std::make_unique<SymbolTable>();
    std::string err;
    // Through the process's root, so a containerised target's files are the ones it maps.
    std::string path = "/proc/" + std::to_string(pid_) + "/root" + m->path;
    if (t->load(path, &err) || t->load(m->path, &err)) table = std::move(t);
  }
  if (!table) return f;
  uint64_t vaddr = 0, start = 0;
  if (!table->offset_to_vaddr(look - m->start + m->offset, &vaddr)) return f;
  if (const std::string* name = table->find(vaddr, &start)) {
    f.func = *name;
    f.off = vaddr + (addr - look) - start;
  } else {
    f.off = vaddr + (addr - look);  // shown as [lib 0x...]: the link-time address
  }
  return f;
}

}  // namespace hz3top
