// pprof's profile format (github.com/google/pprof, proto/profile.proto) for `hz3top heap
// --pprof`: a small protobuf encoder (varints and length-delimited fields, nothing else is
// needed) and the heap profile built from a HeapReport, gzipped with zlib. Sample types
// inuse_space/bytes, inuse_objects/count, alloc_space/bytes, alloc_objects/count (the default
// is inuse_space); one sample per stack, with a "pid" label; locations with their inlined
// functions as lines; mappings with build ids.
#pragma once

#include <cstdint>
#include <string>

#include "heap_model.h"

namespace hz3top {

// Protocol-buffer wire encoding into a byte string.
class ProtoWriter {
 public:
  void varint(uint32_t field, uint64_t v);  // wire type 0 (int64, uint64, bool, enum)
  void svarint(uint32_t field, int64_t v) { varint(field, uint64_t(v)); }  // int64 (not zigzag)
  void bytes(uint32_t field, const std::string& b);  // wire type 2 (string, bytes, message)
  void packed(uint32_t field, const std::vector<uint64_t>& v);  // packed repeated varints
  const std::string& data() const { return buf_; }

 private:
  void raw_varint(uint64_t v);
  std::string buf_;
};

// The uncompressed profile.proto message of a report.
std::string heap_pprof_profile(const HeapReport& r, double duration_s);
// gzip (RFC 1952) of `data`. False with `err` when zlib fails.
bool gzip(const std::string& data, std::string* out, std::string* err);
// Writes the gzipped profile to `path` (through a temporary file and rename, so a reader never
// sees half a file).
bool write_heap_pprof(const HeapReport& r, double duration_s, const std::string& path,
                      std::string* err);
// Writes `text` to `path` the same way.
bool write_file_atomic(const std::string& path, const std::string& text, std::string* err);

}  // namespace hz3top
