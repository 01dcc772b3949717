// libelf-based reader behind elf_info.h. Reads section headers, the dynamic symbol table and the
// .note.stapsdt section; everything else in the file is ignored.
#include "elf_info.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hz3top {

namespace {

constexpr uint32_t NT_STAPSDT = 3;

struct ElfHandle {
  int fd = -1;
  Elf* elf = nullptr;
  ~ElfHandle() {
    if (elf) elf_end(elf);
    if (fd >= 0) close(fd);
  }
};

// The note's descriptor: three addresses, then provider, name and argument strings.
void parse_stapsdt(const char* desc, size_t size, SdtNote* n) {
  if (size < 3 * 8) return;
  memcpy(&n->pc, desc, 8);
  memcpy(&n->base, desc + 8, 8);
  memcpy(&n->semaphore, desc + 16, 8);
  const char* p = desc + 24;
  const char* end = desc + size;
  std::string* fields[] = {&n->provider, &n->name, &n->args};
  for (std::string* f : fields) {
    const char* z = static_cast<const char*>(memchr(p, 0, end - p));
    if (!z) return;
    f->assign(p, z);
    p = z + 1;
  }
}

}  // namespace

bool ElfInfo::has_provider(const std::string& provider) const {
  for (const SdtNote& n : notes)
    if (n.provider == provider) return true;
  return false;
}

bool read_elf(const std::string& path, ElfInfo* out, std::string* err) {
  *out = ElfInfo{};
  if (elf_version(EV_CURRENT) == EV_NONE) {
    *err = "failed to initialise libelf: " + std::string(elf_errmsg(-1));
    return false;
  }
  ElfHandle h;
  h.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (h.fd < 0) {
    *err = "failed to open ELF file " + path + ": " + strerror(errno);
    return false;
  }
  h.elf = elf_begin(h.fd, ELF_C_READ, nullptr);
  if (!h.elf || elf_kind(h.elf) != ELF_K_ELF) {
    *err = "failed to open ELF file " + path + ": not an ELF file";
    return false;
  }

  size_t nphdr = 0;
  if (elf_getphdrnum(h.elf, &nphdr) != 0) {
    *err = "failed to read program headers of " + path + ": " + elf_errmsg(-1);
    return false;
  }
  for (size_t i = 0; i < nphdr; i++) {
    GElf_Phdr ph;
    if (!gelf_getphdr(h.elf, int(i), &ph) || ph.p_type != PT_LOAD) continue;
    out->loads.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_flags});
  }

  size_t shstrndx = 0;
  if (elf_getshdrstrndx(h.elf, &shstrndx) != 0) {
    *err = "failed to read section names of " + path + ": " + elf_errmsg(-1);
    return false;
  }
  for (Elf_Scn* scn = elf_nextscn(h.elf, nullptr); scn; scn = elf_nextscn(h.elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* name = elf_strptr(h.elf, shstrndx, sh.sh_name);
    if (!name) continue;
    if (strcmp(name, ".stapsdt.base") == 0) out->stapsdt_base = sh.sh_addr;

    if (sh.sh_type == SHT_NOTE && strcmp(name, ".note.stapsdt") == 0) {
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      GElf_Nhdr nh;
      size_t off = 0, name_off = 0, desc_off = 0;
      while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        if (nh.n_type != NT_STAPSDT) continue;
        const char* base = static_cast<const char*>(data->d_buf);
        if (nh.n_namesz != 8 || memcmp(base + name_off, "stapsdt", 8) != 0) continue;
        SdtNote n;
        parse_stapsdt(base + desc_off, nh.n_descsz, &n);
        if (!n.name.empty()) out->notes.push_back(std::move(n));
      }
    }

    if (sh.sh_type == SHT_DYNSYM) {
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data || sh.sh_entsize == 0) continue;
      size_t count = sh.sh_size / sh.sh_entsize;
      for (size_t i = 0; i < count; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, int(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
        const char* sname = elf_strptr(h.elf, sh.sh_link, sym.st_name);
        if (sname && strcmp(sname, "hz3_arena_desc") == 0) out->arena_desc = sym.st_value;
      }
    }
  }
  return true;
}

}  // namespace hz3top
