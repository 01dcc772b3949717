// Size classes: the constexpr tables that map a request to a class, a class to its object size,
// span length and thread-cache bound. Checked at compile time; docs/size-classes.md lists them
// with their worst-case waste. Not the allocation logic itself.
//
// Classes (1-based so a page tag's bin field is never 0):
//   small  16 … 2048 B:  16-byte steps to 128, then four steps per power of two (waste < 20 %)
//   medium 2560 … 64 KiB: four steps per power of two
//   large  above 64 KiB:  whole pages from the page heap (not a class)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "config.h"

namespace hz3 {

inline constexpr size_t MAX_SMALL = 2048;
inline constexpr size_t MAX_MEDIUM = 64 * 1024;
inline constexpr uint32_t NUM_CLASSES = 8 + 4 * 4 + 4 * 5;  // 44
inline constexpr uint32_t NUM_BINS = NUM_CLASSES + 1;       // index 0 unused

struct ClassInfo {
  uint32_t size;         // object size
  uint32_t span_pages;   // pages per span
  uint32_t span_objs;    // objects per span
  uint32_t cache_cap;    // objects a thread cache keeps before returning to spans
  uint32_t check_every;  // local frees between two checks of that bound (>= cache_cap)
  uint32_t align;        // natural alignment of every object (span start is page aligned)
};

namespace detail {

constexpr std::array<uint32_t, NUM_BINS> make_sizes() {
  std::array<uint32_t, NUM_BINS> s{};
  uint32_t c = 1;
  for (uint32_t v = 16; v <= 128; v += 16) s[c++] = v;
  for (uint32_t p = 128; p < MAX_MEDIUM; p *= 2)
    for (uint32_t k = 5; k <= 8; k++) s[c++] = p * k / 4;
  return s;
}

// Smallest span that holds >= 8 objects and wastes <= 1/32 of itself at its tail; small classes
// start at 64 KiB so refills rarely reach the page heap (spans are carved lazily, so pages a
// span never hands out are never touched and cost no RSS).
constexpr uint32_t span_pages_for(uint32_t size) {
  for (uint32_t pages = size <= MAX_SMALL ? HZ3_SMALL_SPAN_PAGES : 4; pages <= 256; pages++) {
    size_t bytes = pages * PAGE_SIZE;
    if (bytes / size >= 8 && (bytes % size) * 32 <= bytes) return pages;
  }
  return 0;
}

constexpr uint32_t pow2_divisor(uint32_t v) {
  uint32_t a = v & (~v + 1);
  return a > PAGE_SIZE ? uint32_t(PAGE_SIZE) : a;
}

constexpr std::array<ClassInfo, NUM_BINS> make_classes() {
  auto sizes = make_sizes();
  std::array<ClassInfo, NUM_BINS> t{};
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    uint32_t sz = sizes[c];
    uint32_t pages = span_pages_for(sz);
    uint32_t cap = uint32_t(HZ3_CACHE_BIN_BYTES) / sz;
    cap = cap < 4 ? 4 : (cap > HZ3_CACHE_MAX_OBJS ? HZ3_CACHE_MAX_OBJS : cap);
    // A medium magazine class (heap.h): its array's length, which its cap may grow to. Small
    // classes keep the list cap whatever caches them (a magazine of theirs does not grow).
    if (HZ3_MAGAZINES && sz > MAX_SMALL && sz >= HZ3_MAG_MIN_SIZE) {
      cap = uint32_t(HZ3_MAG_MAX_BYTES) / sz;
      cap = cap < HZ3_MAG_MAX_MIN_OBJS ? HZ3_MAG_MAX_MIN_OBJS : cap;
    }
    // Checking the bound costs a walk of the list, a cache miss per node for medium blocks:
    // at least HZ3_CHECK_EVERY_MIN frees apart, so a class whose cap is tiny (64 KiB blocks: 4)
    // does not pay it every few frees (SSOT medium: -11 % instructions and D1 misses going
    // from 16 to 64). The list can peak at cache_cap + check_every objects between checks.
    uint32_t every = cap < HZ3_CHECK_EVERY_MIN ? HZ3_CHECK_EVERY_MIN : cap;
    t[c] = {sz, pages, uint32_t(pages * PAGE_SIZE / sz), cap, every, pow2_divisor(sz)};
  }
  return t;
}

// (size + 15) >> 4 -> class, for every size up to MAX_MEDIUM: one byte load on the fast path.
constexpr std::array<uint8_t, MAX_MEDIUM / 16 + 1> make_lookup() {
  auto sizes = make_sizes();
  std::array<uint8_t, MAX_MEDIUM / 16 + 1> t{};
  uint32_t c = 1;
  for (uint32_t i = 0; i < t.size(); i++) {
    uint32_t need = i == 0 ? 1 : i * 16;
    while (sizes[c] < need) c++;
    t[i] = uint8_t(c);
  }
  return t;
}

}  // namespace detail

inline constexpr std::array<ClassInfo, NUM_BINS> CLASSES = detail::make_classes();

// A magazine class's cap at thread start (cache.h, MAG_START_END), at most its array's length.
constexpr uint32_t mag_start_cap(uint32_t c) {
  uint32_t cap = uint32_t(HZ3_MAG_BIN_BYTES) / CLASSES[c].size;
  cap = cap < HZ3_MAG_MIN_OBJS ? HZ3_MAG_MIN_OBJS : cap;
  return cap < CLASSES[c].cache_cap ? cap : CLASSES[c].cache_cap;
}
inline constexpr std::array<uint8_t, MAX_MEDIUM / 16 + 1> CLASS_OF = detail::make_lookup();

// Valid for 0 <= size <= MAX_MEDIUM.
inline constexpr uint32_t class_of(size_t size) { return CLASS_OF[(size + 15) >> 4]; }

// The same for size <= DIRECT_MAX, one byte per size: malloc's common case indexes it with the
// request itself, two instructions fewer than rounding to 16 bytes first (1 KiB of table).
inline constexpr size_t DIRECT_MAX = 1024;
inline constexpr std::array<uint8_t, DIRECT_MAX + 1> CLASS_OF_DIRECT = [] {
  std::array<uint8_t, DIRECT_MAX + 1> t{};
  for (size_t s = 0; s <= DIRECT_MAX; s++) t[s] = CLASS_OF[(s + 15) >> 4];
  return t;
}();

// For aligned requests: ALIGNED_CLASS[c][k] is the first class >= c whose every object is
// aligned to 2^(k + 4) (16 … 4096 bytes), or 0 when none is (the request becomes a large block).
// One load instead of a scan; a class's row is 16 bytes, so the index is c * 16 + k.
inline constexpr uint32_t ALIGN_LOG2_MIN = 4, ALIGN_LOG2_MAX = 12;
inline constexpr uint32_t ALIGN_ROW = 16;
static_assert(ALIGN_LOG2_MAX - ALIGN_LOG2_MIN + 1 <= ALIGN_ROW);
namespace detail {
constexpr std::array<std::array<uint8_t, ALIGN_ROW>, NUM_BINS> make_aligned_class() {
  std::array<std::array<uint8_t, ALIGN_ROW>, NUM_BINS> t{};
  for (uint32_t k = 0; k <= ALIGN_LOG2_MAX - ALIGN_LOG2_MIN; k++)
    for (uint32_t c = 1; c < NUM_BINS; c++)
      for (uint32_t d = c; d < NUM_BINS; d++)
        if (CLASSES[d].align >= (1u << (k + ALIGN_LOG2_MIN))) {
          t[c][k] = uint8_t(d);
          break;
        }
  return t;
}
}  // namespace detail
inline constexpr auto ALIGNED_CLASS = detail::make_aligned_class();
constexpr bool aligned_class_is_first_fit() {
  for (uint32_t k = 0; k <= ALIGN_LOG2_MAX - ALIGN_LOG2_MIN; k++)
    for (uint32_t c = 1; c < NUM_BINS; c++) {
      uint32_t d = ALIGNED_CLASS[c][k], a = 1u << (k + ALIGN_LOG2_MIN);
      if (d != 0 && (d < c || CLASSES[d].align < a)) return false;
      for (uint32_t e = c; e < (d ? d : NUM_BINS); e++)
        if (CLASSES[e].align >= a) return false;  // a smaller class would have done
    }
  return ALIGNED_CLASS[1][ALIGN_LOG2_MAX - ALIGN_LOG2_MIN] != 0;  // a page-aligned class exists
}
static_assert(aligned_class_is_first_fit(), "aligned-class table");

static_assert(CLASSES[NUM_CLASSES].size == MAX_MEDIUM, "last class is the medium limit");
static_assert(NUM_CLASSES < 0x7FFF, "bin field must stay below the large marker");
static_assert(class_of(0) == 1 && class_of(16) == 1 && class_of(17) == 2);
static_assert(CLASSES[class_of(MAX_SMALL)].size == MAX_SMALL);

constexpr bool classes_are_sane() {
  for (uint32_t c = 1; c < NUM_BINS; c++) {
    const ClassInfo& k = CLASSES[c];
    if (k.span_pages == 0 || k.span_objs < 8 || k.size % 16 != 0) return false;
    if (c > 1 && k.size <= CLASSES[c - 1].size) return false;
  }
  for (size_t s = 0; s <= MAX_MEDIUM; s++) {  // every size fits its class, and the class is tight
    uint32_t c = class_of(s);
    if (CLASSES[c].size < s) return false;
    if (c > 1 && CLASSES[c - 1].size >= s && s > 0) return false;
  }
  return true;
}
static_assert(classes_are_sane(), "size class tables");

}  // namespace hz3
