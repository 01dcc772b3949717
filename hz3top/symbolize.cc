// libdwfl-based symbolizer and unwinder behind symbolize.h.
#include "symbolize.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hz3top {

namespace {

// NULL: libdwfl's default search, ":.debug:/usr/lib/debug", which includes the build-id tree
// /usr/lib/debug/.build-id/xx/yyyy.debug where Debian's -dbgsym packages put separate debug info.
char* g_debuginfo_path = nullptr;

const Dwfl_Callbacks kProcCallbacks = {
    dwfl_linux_proc_find_elf,
    dwfl_standard_find_debuginfo,
    nullptr,
    &g_debuginfo_path,
};

// One stack walk: the thread's registers and its copied stack.
struct Walk {
  pid_t tid;
  const uint64_t* regs;
  uint64_t base;
  const uint8_t* stack;
  size_t len;
  size_t max;
  std::vector<uint64_t>* out;
};

Walk* current(void* dwfl_arg) { return *static_cast<Walk**>(dwfl_arg); }

pid_t next_thread(Dwfl*, void* dwfl_arg, void** thread_argp) {
  if (*thread_argp) return 0;
  Walk* w = current(dwfl_arg);
  *thread_argp = w;
  return w->tid;
}

bool memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* dwfl_arg) {
  Walk* w = current(dwfl_arg);
  if (addr < w->base || addr + sizeof(Dwarf_Word) > w->base + w->len) return false;
  memcpy(result, w->stack + (addr - w->base), sizeof(Dwarf_Word));
  return true;
}

bool set_initial_registers(Dwfl_Thread* thread, void* thread_arg) {
  Walk* w = static_cast<Walk*>(thread_arg);
  Dwarf_Word regs[17];
  for (int i = 0; i < 17; i++) regs[i] = w->regs[i];
  return dwfl_thread_state_registers(thread, 0, 17, regs);
}

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    next_thread, nullptr, memory_read, set_initial_registers, nullptr, nullptr,
};

int frame_cb(Dwfl_Frame* state, void* arg) {
  Walk* w = static_cast<Walk*>(arg);
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(state, &pc, &activation) || pc == 0) return DWARF_CB_ABORT;
  w->out->push_back(pc);
  return w->out->size() >= w->max ? DWARF_CB_ABORT : DWARF_CB_OK;
}

std::string basename_of(const char* path) {
  if (!path) return "";
  const char* s = strrchr(path, '/');
  return s ? s + 1 : path;
}

// A DIE's function name: the linkage name demangled (it carries the namespace and the
// parameters, as symbol tables do), else DW_AT_name; both through abstract origins.
std::string die_name(Dwarf_Die* die) {
  Dwarf_Attribute a;
  for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name})
    if (dwarf_attr_integrate(die, at, &a))
      if (const char* s = dwarf_formstring(&a)) return demangle(s);
  if (dwarf_attr_integrate(die, DW_AT_name, &a))
    if (const char* s = dwarf_formstring(&a)) return s;
  return "";
}

}  // namespace

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
  if (!func.empty() && inlined) return func + " [inlined]" + (lib.empty() ? "" : " (" + lib + ")");
  if (!func.empty()) {
    snprintf(buf, sizeof buf, "+0x%llx", static_cast<unsigned long long>(off));
    return func + buf + (lib.empty() ? "" : " (" + lib + ")");
  }
  // Without a symbol, the link-time address in the file: the same in every run (no ASLR).
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(lib.empty() ? addr : off));
  return "[" + (lib.empty() ? "" : lib + " ") + buf + "]";
}

std::string Frame::where() const {
  if (file.empty()) return "";
  return basename_of(file.c_str()) + ":" + std::to_string(line);
}

Symbolizer::~Symbolizer() {
  if (dwfl_) dwfl_end(dwfl_);
}

bool Symbolizer::ensure(std::string* err) {
  if (dwfl_) return true;
  // libdwfl asks debuginfod servers for missing debug info when DEBUGINFOD_URLS is set (Debian's
  // profile.d sets it): a network round trip per module on the sampling path. Local files only.
  unsetenv("DEBUGINFOD_URLS");
  dwfl_ = dwfl_begin(&kProcCallbacks);
  if (!dwfl_) {
    *err = std::string("failed to start libdwfl: ") + dwfl_errmsg(-1);
    return false;
  }
  return refresh(err);
}

bool Symbolizer::refresh(std::string* err) {
  if (!dwfl_) return ensure(err);
  // Read the maps first: reporting a gone process would drop every module already known.
  std::vector<Mapping> maps;
  if (!read_maps(pid_, &maps, err)) return false;
  maps_ = std::move(maps);
  dwfl_report_begin(dwfl_);
  int rc = dwfl_linux_proc_report(dwfl_, pid_);
  dwfl_report_end(dwfl_, nullptr, nullptr);
  if (rc != 0) {
    *err = "failed to read the modules of process " + std::to_string(pid_) + ": " +
           (rc > 0 ? strerror(rc) : dwfl_errmsg(-1));
    return false;
  }
  if (!attached_)
    attached_ = dwfl_attach_state(dwfl_, nullptr, pid_, &kThreadCallbacks, &unwinding_);
  return true;
}

std::vector<Frame> Symbolizer::resolve_inlined(uint64_t addr, bool ret) {
  std::string err;
  Frame base;
  base.addr = addr;
  if (!ensure(&err)) return {base};
  uint64_t look = ret && addr ? addr - 1 : addr;
  Dwfl_Module* mod = dwfl_addrmodule(dwfl_, look);
  if (!mod && refresh(&err)) mod = dwfl_addrmodule(dwfl_, look);  // loaded since (dlopen)
  if (!mod) return {base};
  const char* mname =
      dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  if (!mname || mname[0] != '/') {
    // [vdso] and the like: no file to name.
    if (mname && mname[0] == '[') base.lib = mname;
  } else {
    base.lib = basename_of(mname);
  }
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* name = dwfl_module_addrinfo(mod, look, &offset, &sym, nullptr, nullptr, nullptr);
  if (name && *name) {
    base.func = demangle(name);
    base.off = offset + (addr - look);
  } else {
    Dwarf_Addr bias = 0;
    dwfl_module_getelf(mod, &bias);
    base.off = look - bias + (addr - look);  // shown as [lib 0x...]: the link-time address
  }
  std::string file;
  int line = 0;
  if (Dwfl_Line* l = dwfl_module_getsrc(mod, look)) {
    const char* src = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
    if (src) file = src;
  }
  std::vector<Frame> out;
  Dwarf_Addr dbias = 0;
  if (Dwarf_Die* cu = dwfl_module_addrdie(mod, look, &dbias)) {
    Dwarf_Die* scopes = nullptr;
    int n = dwarf_getscopes(cu, look - dbias, &scopes);
    Dwarf_Files* files = nullptr;
    size_t nfiles = 0;
    bool have_files = dwarf_getsrcfiles(cu, &files, &nfiles) == 0;
    for (int i = 0; i < n; i++) {
      int tag = dwarf_tag(&scopes[i]);
      if (tag == DW_TAG_subprogram) break;
      if (tag != DW_TAG_inlined_subroutine) continue;
      Frame f;
      f.addr = addr;
      f.func = die_name(&scopes[i]);
      f.lib = base.lib;
      f.file = file;
      f.line = line;
      f.inlined = true;
      out.push_back(f);
      // The caller's position is the call site of this inlined instance.
      Dwarf_Attribute a;
      Dwarf_Word v = 0;
      if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &v) == 0) line = int(v);
      if (have_files && dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &v) == 0)
        if (const char* fn = dwarf_filesrc(files, v, nullptr, nullptr)) file = fn;
    }
    free(scopes);
  }
  base.file = file;
  base.line = line;
  out.push_back(base);
  return out;
}

Frame Symbolizer::resolve(uint64_t addr, bool ret) { return resolve_inlined(addr, ret).back(); }

std::vector<uint64_t> Symbolizer::unwind(pid_t tid, const uint64_t* regs, uint64_t base,
                                         const uint8_t* stack, size_t len, size_t max,
                                         bool* complete) {
  std::vector<uint64_t> out;
  if (complete) *complete = false;
  std::string err;
  if (!ensure(&err) || !attached_ || max == 0) return out;
  if (!dwfl_addrmodule(dwfl_, regs[16])) refresh(&err);
  Walk w{tid, regs, base, stack, len, max, &out};
  unwinding_ = &w;
  // 0: the outermost frame was reached; -1: the walk stopped on an error (a read outside the
  // copy, no CFI and no frame pointer) or at `max` frames.
  int rc = dwfl_getthread_frames(dwfl_, tid, frame_cb, &w);
  if (complete) *complete = rc == 0;
  unwinding_ = nullptr;
  return out;
}

std::vector<ModuleInfo> Symbolizer::modules() {
  std::vector<ModuleInfo> out;
  std::string err;
  if (!ensure(&err)) return out;
  auto cb = [](Dwfl_Module* mod, void**, const char* name, Dwarf_Addr start, void* arg) -> int {
    auto* self = static_cast<std::pair<Symbolizer*, std::vector<ModuleInfo>*>*>(arg);
    if (!name || name[0] != '/') return DWARF_CB_OK;
    ModuleInfo m;
    m.path = name;
    Dwarf_Addr end = 0;
    dwfl_module_info(mod, nullptr, nullptr, &end, nullptr, nullptr, nullptr, nullptr);
    m.start = start;
    m.end = end;
    // The module's first mapping: its start and file offset (usually 0).
    uint64_t lowest = UINT64_MAX;
    for (const Mapping& x : self->first->maps_)
      if (x.path == m.path && x.start < lowest) {
        lowest = x.start;
        m.start = x.start;
        m.offset = x.offset;
      }
    const unsigned char* bits = nullptr;
    GElf_Addr vaddr = 0;
    int n = dwfl_module_build_id(mod, &bits, &vaddr);
    for (int i = 0; i < n; i++) {
      char hex[3];
      snprintf(hex, sizeof hex, "%02x", bits[i]);
      m.build_id += hex;
    }
    self->second->push_back(std::move(m));
    return DWARF_CB_OK;
  };
  std::pair<Symbolizer*, std::vector<ModuleInfo>*> arg{this, &out};
  dwfl_getmodules(dwfl_, cb, &arg, 0);
  return out;
}

}  // namespace hz3top
