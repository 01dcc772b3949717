// Protobuf encoding and the pprof heap profile behind pprof.h. Field numbers are those of
// profile.proto (message Profile and its parts).
#include "pprof.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>

namespace hz3top {

void ProtoWriter::raw_varint(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  buf_.push_back(char(v));
}

void ProtoWriter::varint(uint32_t field, uint64_t v) {
  raw_varint(uint64_t(field) << 3 | 0);
  raw_varint(v);
}

void ProtoWriter::bytes(uint32_t field, const std::string& b) {
  raw_varint(uint64_t(field) << 3 | 2);
  raw_varint(b.size());
  buf_ += b;
}

void ProtoWriter::packed(uint32_t field, const std::vector<uint64_t>& v) {
  ProtoWriter inner;
  for (uint64_t x : v) inner.raw_varint(x);
  bytes(field, inner.buf_);
}

namespace {

// profile.proto field numbers.
enum : uint32_t {
  P_SAMPLE_TYPE = 1,
  P_SAMPLE = 2,
  P_MAPPING = 3,
  P_LOCATION = 4,
  P_FUNCTION = 5,
  P_STRING_TABLE = 6,
  P_TIME_NANOS = 9,
  P_DURATION_NANOS = 10,
  P_PERIOD_TYPE = 11,
  P_PERIOD = 12,
  P_COMMENT = 13,
  P_DEFAULT_SAMPLE_TYPE = 14,
  VT_TYPE = 1,
  VT_UNIT = 2,
  S_LOCATION_ID = 1,
  S_VALUE = 2,
  S_LABEL = 3,
  L_KEY = 1,
  L_STR = 2,
  L_NUM = 3,
  M_ID = 1,
  M_START = 2,
  M_LIMIT = 3,
  M_OFFSET = 4,
  M_FILENAME = 5,
  M_BUILD_ID = 6,
  M_HAS_FUNCTIONS = 7,
  M_HAS_FILENAMES = 8,
  M_HAS_LINE_NUMBERS = 9,
  M_HAS_INLINE_FRAMES = 10,
  LOC_ID = 1,
  LOC_MAPPING_ID = 2,
  LOC_ADDRESS = 3,
  LOC_LINE = 4,
  LINE_FUNCTION_ID = 1,
  LINE_LINE = 2,
  F_ID = 1,
  F_NAME = 2,
  F_SYSTEM_NAME = 3,
  F_FILENAME = 4,
};

class Strings {
 public:
  Strings() { id(""); }
  uint64_t id(const std::string& s) {
    auto it = ids_.find(s);
    if (it != ids_.end()) return it->second;
    uint64_t n = list_.size();
    ids_.emplace(s, n);
    list_.push_back(s);
    return n;
  }
  const std::vector<std::string>& list() const { return list_; }

 private:
  std::unordered_map<std::string, uint64_t> ids_;
  std::vector<std::string> list_;
};

std::string value_type(Strings& st, const char* type, const char* unit) {
  ProtoWriter w;
  w.varint(VT_TYPE, st.id(type));
  w.varint(VT_UNIT, st.id(unit));
  return w.data();
}

}  // namespace

std::string heap_pprof_profile(const HeapReport& r, double duration_s) {
  Strings st;
  ProtoWriter prof;
  prof.bytes(P_SAMPLE_TYPE, value_type(st, "inuse_space", "bytes"));
  prof.bytes(P_SAMPLE_TYPE, value_type(st, "inuse_objects", "count"));
  prof.bytes(P_SAMPLE_TYPE, value_type(st, "alloc_space", "bytes"));
  prof.bytes(P_SAMPLE_TYPE, value_type(st, "alloc_objects", "count"));

  std::map<std::pair<std::string, std::string>, uint64_t> functions;  // (name, file) -> id
  uint64_t next_loc = 1, next_map = 1;
  for (const HeapProc& p : r.procs) {
    // Mappings of this process; a location names the one that holds its address.
    std::vector<std::pair<const ModuleInfo*, uint64_t>> maps;
    for (const ModuleInfo& m : p.modules) {
      ProtoWriter w;
      w.varint(M_ID, next_map);
      w.varint(M_START, m.start);
      w.varint(M_LIMIT, m.end);
      w.varint(M_OFFSET, m.offset);
      w.varint(M_FILENAME, st.id(m.path));
      w.varint(M_BUILD_ID, st.id(m.build_id));
      w.varint(M_HAS_FUNCTIONS, 1);
      w.varint(M_HAS_FILENAMES, 1);
      w.varint(M_HAS_LINE_NUMBERS, 1);
      w.varint(M_HAS_INLINE_FRAMES, 1);
      prof.bytes(P_MAPPING, w.data());
      maps.push_back({&m, next_map++});
    }
    std::map<uint64_t, uint64_t> loc_of;  // address -> location id, per process
    for (const HeapSite& s : p.sites)
      for (const HeapStack& hs : s.stacks) {
        // Locations, leaf first, without libhz3's own frames (the sampler's machinery).
        std::vector<uint64_t> locs;
        size_t i = hs.hz3_frames;
        while (i < hs.frames.size()) {
          // Frames of one address: its inlined functions, then the function holding them.
          size_t j = i;
          while (j + 1 < hs.frames.size() && hs.frames[j].inlined) j++;
          uint64_t addr = hs.frames[i].addr;
          auto it = loc_of.find(addr);
          if (it == loc_of.end()) {
            ProtoWriter w;
            uint64_t id = next_loc++;
            w.varint(LOC_ID, id);
            for (auto& [m, mid] : maps)
              if (addr >= m->start && addr < m->end) {
                w.varint(LOC_MAPPING_ID, mid);
                break;
              }
            w.varint(LOC_ADDRESS, addr);
            for (size_t k = i; k <= j; k++) {
              const Frame& f = hs.frames[k];
              std::string name = f.func.empty() ? f.label() : f.func;
              auto key = std::make_pair(name, f.file);
              auto fit = functions.find(key);
              if (fit == functions.end()) {
                uint64_t fid = functions.size() + 1;
                ProtoWriter fw;
                fw.varint(F_ID, fid);
                fw.varint(F_NAME, st.id(name));
                fw.varint(F_SYSTEM_NAME, st.id(name));
                fw.varint(F_FILENAME, st.id(f.file));
                prof.bytes(P_FUNCTION, fw.data());
                fit = functions.emplace(key, fid).first;
              }
              ProtoWriter lw;
              lw.varint(LINE_FUNCTION_ID, fit->second);
              lw.svarint(LINE_LINE, f.line);
              w.bytes(LOC_LINE, lw.data());
            }
            prof.bytes(P_LOCATION, w.data());
            it = loc_of.emplace(addr, id).first;
          }
          locs.push_back(it->second);
          i = j + 1;
        }
        ProtoWriter sw;
        sw.packed(S_LOCATION_ID, locs);
        sw.packed(S_VALUE, {uint64_t(std::llround(std::max(0.0, hs.sums.live_bytes))),
                            uint64_t(std::llround(std::max(0.0, hs.sums.live_objects))),
                            uint64_t(std::llround(hs.sums.alloc_bytes)),
                            uint64_t(std::llround(hs.sums.alloc_objects))});
        ProtoWriter lw;
        lw.varint(L_KEY, st.id("pid"));
        lw.svarint(L_NUM, p.pid);
        sw.bytes(S_LABEL, lw.data());
        prof.bytes(P_SAMPLE, sw.data());
      }
  }
  prof.svarint(P_TIME_NANOS, int64_t(r.wall * 1e9));
  prof.svarint(P_DURATION_NANOS, int64_t(duration_s * 1e9));
  // The period: the sampling mean most samples were drawn with (of the process with the most
  // such samples); a comment says how far the pacing raised it.
  const HeapProc* most = nullptr;
  double mean_max = 0;
  for (const HeapProc& p : r.procs) {
    if (!most || p.sample_mean_samples > most->sample_mean_samples) most = &p;
    mean_max = std::max(mean_max, p.sample_mean_max);
  }
  int64_t period = most ? int64_t(most->sample_mean) : 0;
  prof.bytes(P_PERIOD_TYPE, value_type(st, "space", "bytes"));
  prof.svarint(P_PERIOD, period);
  prof.varint(P_COMMENT, st.id("hz3top heap: libhz3 otel_memory samples, weighted estimates"));
  if (mean_max > double(period))
    prof.varint(P_COMMENT, st.id("sampling mean " + std::to_string(period) +
                                 " bytes, raised by the pacing up to " +
                                 std::to_string(int64_t(mean_max)) + " for some samples"));
  prof.varint(P_DEFAULT_SAMPLE_TYPE, st.id("inuse_space"));
  // The string table last: every index above is known by now.
  for (const std::string& s : st.list()) prof.bytes(P_STRING_TABLE, s);
  return prof.data();
}

bool gzip(const std::string& data, std::string* out, std::string* err) {
  z_stream z;
  memset(&z, 0, sizeof z);
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    *err = "zlib: deflateInit2 failed";
    return false;
  }
  out->resize(deflateBound(&z, data.size()) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(&(*out)[0]);
  z.avail_out = uInt(out->size());
  int rc = deflate(&z, Z_FINISH);
  out->resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    *err = "zlib: deflate failed";
    return false;
  }
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& text, std::string* err) {
  std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "wb");
  if (!f) {
    *err = "failed to write " + tmp + ": " + strerror(errno);
    return false;
  }
  bool ok = fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    *err = "failed to write " + path + ": " + strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool write_heap_pprof(const HeapReport& r, double duration_s, const std::string& path,
                      std::string* err) {
  std::string gz;
  if (!gzip(heap_pprof_profile(r, duration_s), &gz, err)) return false;
  return write_file_atomic(path, gz, err);
}

}  // namespace hz3top
