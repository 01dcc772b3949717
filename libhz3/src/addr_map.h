// AddrMap: an open-addressing hash map from an address to a small value, for the allocator's
// side tables (huge blocks, sampled blocks). Storage comes from Pal::map, never from malloc;
// the caller holds whatever lock guards the map. Not for the fast paths.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pal.h"

namespace hz3 {

template <typename V>
class AddrMap {
 public:
  struct Entry {
    uintptr_t key;  // EMPTY or TOMBSTONE, else the address
    V value;
  };

  // nullptr when absent.
  Entry* find(uintptr_t key) {
    if (!slots_) return nullptr;
    for (size_t i = hash(key) & (cap_ - 1);; i = (i + 1) & (cap_ - 1)) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == EMPTY) return nullptr;
    }
  }
  // Inserts key (which must be absent); false when the table cannot grow (out of memory).
  bool insert(uintptr_t key, const V& value) {
    if ((used_ + 1) * 2 > cap_ && !grow()) return false;
    size_t i = hash(key) & (cap_ - 1);
    while (slots_[i].key > TOMBSTONE) i = (i + 1) & (cap_ - 1);
    if (slots_[i].key == EMPTY) used_++;
    slots_[i] = {key, value};
    return true;
  }
  void erase(Entry* e) { e->key = TOMBSTONE; }  // keeps probe chains intact
  // Every live entry (statistics).
  template <typename F>
  void for_each(F&& fn) const {
    for (size_t i = 0; i < cap_; i++)
      if (slots_[i].key > TOMBSTONE) fn(slots_[i]);
  }
  size_t table_bytes() const { return cap_ * sizeof(Entry); }

 private:
  static constexpr uintptr_t EMPTY = 0, TOMBSTONE = 1;
  static size_t hash(uintptr_t k) { return (k >> 4) * 0x9E3779B97F4A7C15ull >> 17; }

  // Doubles the table (dropping tombstones); the load factor stays <= 1/2, so probes end.
  bool grow() {
    size_t ncap = cap_ ? cap_ * 2 : 256;
    auto* ns = static_cast<Entry*>(Pal::map(ncap * sizeof(Entry)));
    if (!ns) return false;
    size_t live = 0;
    for (size_t i = 0; i < cap_; i++) {
      if (slots_[i].key <= TOMBSTONE) continue;
      size_t j = hash(slots_[i].key) & (ncap - 1);
      while (ns[j].key != EMPTY) j = (j + 1) & (ncap - 1);
      ns[j] = slots_[i];
      live++;
    }
    if (slots_) Pal::unmap(slots_, cap_ * sizeof(Entry));
    slots_ = ns;
    cap_ = ncap;
    used_ = live;
    return true;
  }

  Entry* slots_ = nullptr;  // zero-initialised statics: usable before any constructor runs
  size_t cap_ = 0;
  size_t used_ = 0;  // live + tombstones
};

}  // namespace hz3
