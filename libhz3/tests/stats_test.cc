// hz3's statistics (docs/stats.md): mallinfo2, mallinfo, malloc_stats, malloc_info and mallopt
// report hz3's own ledger. The program allocates known amounts and checks each line moves by
// them (within a small tolerance for what the refills put in the cache), that the ledger adds
// up exactly ('+' lines sum to the next '=' line), and that another thread's cache and inbox
// are seen. Run with LD_PRELOAD=<libhz3.so> and `--hz3`; without it every case is skipped
// (glibc's numbers mean something else). Not the glibc comparison (glibc_diff.cc).
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>

#include <string>

#include "check.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // mallinfo is tested on purpose

using namespace hz3::test;

namespace {

bool g_hz3 = false;

struct Line {
  char mark;
  unsigned long long bytes;
  char label[160];
};

// malloc_stats() output, captured from stderr through a pipe (it is a few lines).
std::string capture_stats() {
  int fd[2];
  if (pipe(fd) != 0) return "";
  int saved = dup(2);
  dup2(fd[1], 2);
  malloc_stats();
  dup2(saved, 2);
  close(saved);
  close(fd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  close(fd[0]);
  return out;
}

int parse_ledger(const std::string& text, Line* lines, int max) {
  int n = 0;
  size_t i = 0;
  while (i < text.size() && n < max) {
    size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string l = text.substr(i, j - i);
    i = j + 1;
    Line x{};
    int used = 0;
    if (l.size() > 2 && (l[0] == ' ' || l[0] == '+' || l[0] == '=') &&
        sscanf(l.c_str() + 1, " %llu (%*f MiB)  %n", &x.bytes, &used) == 1 && used > 0) {
      x.mark = l[0];
      snprintf(x.label, sizeof x.label, "%s", l.c_str() + 1 + used);
      lines[n++] = x;
    }
  }
  return n;
}

// The value of the ledger line whose label starts with `prefix`; ULLONG_MAX when missing.
unsigned long long line_value(const Line* lines, int n, const char* prefix) {
  for (int k = 0; k < n; k++)
    if (strncmp(lines[k].label, prefix, strlen(prefix)) == 0) return lines[k].bytes;
  return ULLONG_MAX;
}

bool near(size_t got, size_t want, size_t slack) {
  return got + slack >= want && got <= want + slack;
}

void* g_blocks[4096];

void t_ledger_adds_up() {
  if (!g_hz3) return skip_case("glibc's numbers: run with --hz3 under libhz3");
  for (int k = 0; k < 1000; k++) g_blocks[k] = malloc(size_t(k) * 37 % 70000 + 1);
  std::string text = capture_stats();
  struct mallinfo2 m = mallinfo2();
  Line lines[64];
  int n = parse_ledger(text, lines, 64);
  REQUIREF(n >= 12, "%d ledger lines in:\n%s", n, text.c_str());
  CHECKF(lines[0].mark == ' ', "first line '%c'", lines[0].mark);
  unsigned long long sum = 0;
  int totals = 0;
  for (int k = 0; k < n; k++) {
    if (lines[k].mark == ' ')
      sum = lines[k].bytes;
    else if (lines[k].mark == '+')
      sum += lines[k].bytes;
    else {
      CHECKF(sum == lines[k].bytes, "'+' lines sum to %llu, '= %s' says %llu", sum, lines[k].label,
             lines[k].bytes);
      totals++;
    }
  }
  CHECKF(totals == 2, "%d '=' lines", totals);
  CHECKF(text.find("unaccounted") == std::string::npos, "%s", text.c_str());
  CHECKF(line_value(lines, n, "arena pages handed out") == m.arena, "arena %zu vs ledger %llu",
         m.arena, line_value(lines, n, "arena pages handed out"));
  CHECK(m.arena == m.uordblks + m.fordblks);
  CHECK(m.arena > 0 && m.uordblks > 0);
  for (int k = 0; k < 1000; k++) free(g_blocks[k]);
}

// Known allocations move uordblks by their usable sizes: small, medium, large.
void t_mallinfo2_tracks_allocations() {
  if (!g_hz3) return skip_case("glibc's numbers: run with --hz3 under libhz3");
  struct {
    size_t size;
    int count;
  } sets[] = {{100, 2000}, {20000, 100}, {300000, 8}};
  for (auto& set : sets) {
    struct mallinfo2 a = mallinfo2();
    size_t want = 0;
    for (int k = 0; k < set.count; k++) {
      g_blocks[k] = malloc(set.size);
      want += malloc_usable_size(g_blocks[k]);
    }
    struct mallinfo2 b = mallinfo2();
    // Exact: refills move objects from spans to the cache, neither of which is "in use", and
    // nothing else allocates between the snapshots (one thread, no output).
    size_t slack = 0;
    CHECKF(near(b.uordblks - a.uordblks, want, slack),
           "%d x %zu B: uordblks grew by %zu, usable sizes sum to %zu", set.count, set.size,
           b.uordblks - a.uordblks, want);
    CHECK(b.arena == b.uordblks + b.fordblks);
    for (int k = 0; k < set.count; k++) free(g_blocks[k]);
    struct mallinfo2 c = mallinfo2();
    CHECKF(near(c.uordblks, a.uordblks, slack), "after the frees uordblks %zu, before %zu",
           c.uordblks, a.uordblks);
    CHECK(c.arena == c.uordblks + c.fordblks);
  }
}

void t_huge_blocks() {
  if (!g_hz3) return skip_case("glibc's numbers: run with --hz3 under libhz3");
  struct mallinfo2 a = mallinfo2();
  size_t n = (size_t{1} << 30) + 1;
  void* p = malloc(n);
  REQUIRE(p != nullptr);
  struct mallinfo2 b = mallinfo2();
  CHECKF(b.hblks == a.hblks + 1, "hblks %zu -> %zu", a.hblks, b.hblks);
  CHECKF(b.hblkhd - a.hblkhd == n + 4095 - (n + 4095) % 4096, "hblkhd grew by %zu",
         b.hblkhd - a.hblkhd);
  Line lines[64];
  int k = parse_ledger(capture_stats(), lines, 64);
  CHECK(line_value(lines, k, "huge blocks") == b.hblkhd);
  free(p);
  struct mallinfo2 c = mallinfo2();
  CHECK(c.hblks == a.hblks && c.hblkhd == a.hblkhd);
}

// mallinfo's int fields are mallinfo2's, clamped to INT_MAX.
void t_mallinfo_clamps() {
  if (!g_hz3) return skip_case("glibc's numbers: run with --hz3 under libhz3");
  void* p = malloc((size_t{1} << 31) + 1);  // huge: mapped, never touched
  if (!p) return skip_case("no 2 GiB of address space to map");
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m = mallinfo();
  CHECKF(m2.hblkhd > size_t(INT_MAX) && m.hblkhd == INT_MAX, "hblkhd %zu -> %d", m2.hblkhd,
         m.hblkhd);
  CHECK(size_t(m.hblks) == m2.hblks && size_t(m.arena) == m2.arena);
  free(p);
}

// Another thread's cache: a thread frees 400 x 64 B (they stay in its cache, under its cap)
// and waits; its cache shows in the thread-cache line until it exits.
sem_t g_ready, g_go;
void* g_remote[400];

void* cache_holder(void*) {
  void* mine[400];
  for (auto& p : mine) p = malloc(64);
  for (auto& p : mine) free(p);
  sem_post(&g_ready);
  sem_wait(&g_go);
  return nullptr;
}

void t_other_thread_cache() {
  if (!g_hz3) return skip_case("glibc's numbers: run with --hz3 under libhz3");
  sem_init(&g_ready, 0, 0);
  sem_init(&g_go, 0, 0);
  struct mallinfo2 a = mallinfo2();
  pthread_t t;
  REQUIRE(pthread_create(&t, nullptr, cache_holder, nullptr) == 0);
  sem_wait(&g_ready);
  struct mallinfo2 b = mallinfo2();
  CHECKF(b.fsmblks >= a.fsmblks + 400 * 64,
         "thread caches %zu -> %zu with another thread's 400 x 64 B", a.fsmblks, b.fsmblks);
  CHECK(b.arena == b.uordblks + b.fordblks);
  sem_post(&g_go);
  pthread_join(t, nullptr);
  struct mallinfo2 c = mallinfo2();
  CHECKF(c.fsmblks + 400 * 64 <= b.fsmblks, "thread caches %zu after its exit, %zu before",
         c.fsmblks, b.fsmblks);
}

// Blocks freed by another thread wait in the owner's inbox: counted there, not in use.
void* inbox_owner(void*) {
  for (auto& p : g_remote) p = malloc(128);
  sem_post(&g_ready);
  sem_wait(&g_go);
  return nullptr;
}

void t_remote_inbox() {
  if (!g_hz3) return skip_case("glibc's numbers: run with --hz3 under libhz3");
  sem_init(&g_ready, 0, 0);
  sem_init(&g_go, 0, 0);
  pthread_t t;
  REQUIRE(pthread_create(&t, nullptr, inbox_owner, nullptr) == 0);
  sem_wait(&g_ready);
  Line lines[64];
  int n = parse_ledger(capture_stats(), lines, 64);
  unsigned long long before = line_value(lines, n, "in remote-free inboxes");
  struct mallinfo2 a = mallinfo2();
  for (int k = 0; k < 200; k++) free(g_remote[k]);  // 25 KiB: far below an idle drain (1 MiB)
  n = parse_ledger(capture_stats(), lines, 64);
  unsigned long long after = line_value(lines, n, "in remote-free inboxes");
  struct mallinfo2 b = mallinfo2();
  CHECKF(after >= before + 200 * 128, "inboxes %llu -> %llu after 200 remote frees of 128 B",
         before, after);
  CHECKF(a.uordblks >= b.uordblks + 200 * 128, "uordblks %zu -> %zu", a.uordblks, b.uordblks);
  for (int k = 200; k < 400; k++) free(g_remote[k]);
  sem_post(&g_go);
  pthread_join(t, nullptr);
}

unsigned long long xml_attr(const std::string& xml, size_t from, const char* attr) {
  size_t k = xml.find(attr, from);
  if (k == std::string::npos) return ULLONG_MAX;
  return strtoull(xml.c_str() + k + strlen(attr), nullptr, 10);
}

void t_malloc_info_xml() {
  if (!g_hz3) return skip_case("glibc's numbers: run with --hz3 under libhz3");
  void* big = malloc((size_t{1} << 30) + 1);
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  REQUIRE(f != nullptr);
  struct mallinfo2 m = mallinfo2();
  CHECK(malloc_info(0, f) == 0);
  fclose(f);
  std::string xml(buf, len);
  free(buf);
  CHECKF(xml.rfind("<malloc version=\"1\">\n", 0) == 0, "starts %.40s", xml.c_str());
  CHECKF(xml.size() > 10 && xml.compare(xml.size() - 10, 10, "</malloc>\n") == 0, "ends %s",
         xml.c_str() + (xml.size() > 40 ? xml.size() - 40 : 0));
  size_t heaps = 0, k = 0;
  while ((k = xml.find("<heap nr=", k)) != std::string::npos) heaps++, k++;
  CHECKF(heaps >= 2, "%zu heaps", heaps);
  size_t tail = xml.rfind("</heap>");
  REQUIRE(tail != std::string::npos);
  CHECKF(xml_attr(xml, xml.find("<total type=\"mmap\"", tail), "count=\"") == m.hblks,
         "mmap count vs hblks %zu", m.hblks);
  CHECKF(xml_attr(xml, xml.find("<total type=\"mmap\"", tail), "size=\"") == m.hblkhd,
         "mmap size vs hblkhd %zu", m.hblkhd);
  CHECKF(xml_attr(xml, xml.find("<system type=\"current\"", tail), "size=\"") == m.arena,
         "current vs arena %zu", m.arena);
  errno = 4321;
  CHECK(malloc_info(1, stdout) == EINVAL && errno == 4321);
  free(big);
}

void t_mallopt() {
  if (!g_hz3) return skip_case("glibc accepts every option: run with --hz3 under libhz3");
  struct {
    int param, value, want;
  } table[] = {
      {M_ARENA_MAX, 1, 1},      {M_ARENA_TEST, 8, 1},    {M_MMAP_THRESHOLD, 1 << 20, 1},
      {M_TRIM_THRESHOLD, 0, 1}, {M_TOP_PAD, 1 << 20, 1}, {M_PERTURB, 0, 1},
      {M_PERTURB, 0xAA, 0},     {M_MXFAST, 64, 0},       {M_MMAP_MAX, 0, 0},
      {M_CHECK_ACTION, 3, 0},   {12345, 1, 0},           {-12345, 1, 0},
  };
  for (auto& t : table)
    CHECKF(mallopt(t.param, t.value) == t.want, "mallopt(%d, %d) = %d, documented %d", t.param,
           t.value, mallopt(t.param, t.value), t.want);
}

}  // namespace

int main(int argc, char** argv) {
  init(argc > 1 ? argv[1] : "stats", argc, argv);
  for (int i = 1; i < argc; i++) g_hz3 |= strcmp(argv[i], "--hz3") == 0;
  run_case("ledger_adds_up", t_ledger_adds_up);
  run_case("mallinfo2_tracks_allocations", t_mallinfo2_tracks_allocations);
  run_case("huge_blocks", t_huge_blocks);
  run_case("mallinfo_clamps", t_mallinfo_clamps);
  run_case("other_thread_cache", t_other_thread_cache);
  run_case("remote_inbox", t_remote_inbox);
  run_case("malloc_info_xml", t_malloc_info_xml);
  run_case("mallopt", t_mallopt);
  return finish();
}
