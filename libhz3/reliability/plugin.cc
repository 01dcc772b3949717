// librel_plugin.so: a shared library that rel_limits dlopens long after the process started,
// the way a service loads a plugin. It allocates in its constructor and frees in its destructor,
// keeps C++ objects in dynamic TLS (for a dlopen'ed module glibc allocates each thread's TLS
// block with malloc and frees it at thread exit), and hands blocks across the library boundary in
// both directions. It calls plain malloc/free: the process's allocator (libhz3 when preloaded)
// serves it. Not a test by itself; rel_limits' dlopen_plugin case drives it.
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<std::string>* g_names;  // built by the constructor, freed by the destructor
void* g_buffer;

struct PerThread {
  std::string text;
  std::vector<long> numbers;
  ~PerThread() { numbers.clear(); }
};
thread_local PerThread t_state;  // dynamic TLS: allocated per thread on first use

__attribute__((constructor)) void plugin_init() {
  g_names = new std::vector<std::string>();
  for (int i = 0; i < 2000; i++) g_names->push_back("plugin-name-" + std::to_string(i * 7919));
  g_buffer = malloc(1 << 20);
  memset(g_buffer, 0x5A, 1 << 20);
}

__attribute__((destructor)) void plugin_fini() {
  delete g_names;
  free(g_buffer);
}

}  // namespace

extern "C" {

// A block of n bytes filled with 0xAB, for the caller to free.
void* plugin_alloc(size_t n) {
  void* p = malloc(n);
  if (p) memset(p, 0xAB, n);
  return p;
}

// Checks that the caller's n-byte block is all 0xCD and frees it here. Returns 1 when intact.
int plugin_check_free(void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  int ok = 1;
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0xCD) ok = 0;
  free(p);
  return ok;
}

// The usable size as this library sees it (the same function as the caller's, or not).
size_t plugin_usable_size(void* p) { return malloc_usable_size(p); }

// n threads that each grow their TLS objects and churn the heap, then exit (glibc frees their
// TLS blocks). Returns the sum of what they computed, which the caller can predict.
long plugin_threads(int n) {
  std::vector<long> out(n);
  std::vector<std::thread> ts;
  for (int t = 0; t < n; t++)
    ts.emplace_back([t, &out] {
      for (int i = 0; i < 500; i++) {
        t_state.text += char('a' + i % 26);
        t_state.numbers.push_back(i);
        std::string s((*g_names)[size_t(i) % g_names->size()]);
        free(malloc(s.size() * 3));
      }
      long sum = 0;
      for (long v : t_state.numbers) sum += v;
      out[t] = sum + long(t_state.text.size());
    });
  for (auto& th : ts) th.join();
  long total = 0;
  for (long v : out) total += v;
  return total;
}

// Whether the constructor's state is intact.
int plugin_state_ok() {
  const unsigned char* b = static_cast<const unsigned char*>(g_buffer);
  for (size_t i = 0; i < (1 << 20); i += 4096)
    if (b[i] != 0x5A) return 0;
  return g_names->size() == 2000 && (*g_names)[1] == "plugin-name-7919";
}

}  // extern "C"
