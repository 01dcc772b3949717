// Shared output primitives behind output.h.
#include "output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace hz3top {

std::string fmt_si(double v) {
  if (!std::isfinite(v)) return "-";
  if (v < 0) return "-" + fmt_si(-v);
  static const char* UNITS[] = {"", "k", "M", "G", "T", "P"};
  int u = 0;
  // Round first, so 999.96 prints as 1.00k rather than 1000.
  while (u < 5 && v >= 999.5) {
    v /= 1000;
    u++;
  }
  char buf[32];
  if (u == 0) {
    if (v == std::floor(v) || v >= 99.95)
      snprintf(buf, sizeof buf, "%.0f", v);
    else
      snprintf(buf, sizeof buf, "%.1f", v);
  } else if (v < 9.995) {
    snprintf(buf, sizeof buf, "%.2f%s", v, UNITS[u]);
  } else if (v < 99.95) {
    snprintf(buf, sizeof buf, "%.1f%s", v, UNITS[u]);
  } else {
    snprintf(buf, sizeof buf, "%.0f%s", v, UNITS[u]);
  }
  return buf;
}

std::string fmt_bytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  const char* sign = bytes < 0 && std::llround(bytes) != 0 ? "-" : "";
  double a = std::fabs(bytes);
  char buf[32];
  if (std::llround(a) < 1024) {
    snprintf(buf, sizeof buf, "%s%lld B", sign, std::llround(a));
    return buf;
  }
  static const char* UNITS[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  // Divide while the value would round to 1024.0 or more of the unit.
  do {
    a /= 1024;
    u++;
  } while (u < 6 && a >= 1023.95);
  snprintf(buf, sizeof buf, a < 99.95 ? "%s%.1f %s" : "%s%.0f %s", sign, a, UNITS[u]);
  return buf;
}

std::string fmt_bytes_delta(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  std::string m = fmt_bytes(std::fabs(bytes));
  return (bytes < 0 && m != "0 B" ? "-" : "+") + m;
}

std::string pad_cell(const std::string& s, int width, bool left) {
  size_t cols = 0, end = 0;  // code points of s[0, end)
  for (size_t i = 0; i < s.size(); i++) {
    if ((uint8_t(s[i]) & 0xC0) == 0x80) continue;  // a continuation byte
    if (left && cols == size_t(width)) break;
    cols++;
    end = i + 1;
    while (end < s.size() && (uint8_t(s[end]) & 0xC0) == 0x80) end++;
  }
  if (!left) end = s.size();
  std::string blanks(cols < size_t(width) ? size_t(width) - cols : 0, ' ');
  return left ? s.substr(0, end) + blanks : blanks + s;
}

std::string fmt_pct(std::optional<double> r, int decimals) {
  if (!r || !std::isfinite(*r)) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, "%.*f", decimals, *r * 100.0);
  return buf;
}

std::string fmt_clock(double unix_seconds, bool tenths) {
  double whole = std::floor(unix_seconds);
  time_t t = time_t(whole);
  tm tmv;
  localtime_r(&t, &tmv);
  char buf[24];
  size_t n = strftime(buf, sizeof buf, "%H:%M:%S", &tmv);
  if (tenths)
    snprintf(buf + n, sizeof buf - n, ".%d", std::min(9, int((unix_seconds - whole) * 10)));
  return buf;
}

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "-";
  char buf[32];
  if (s < 59.95)
    snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3570)
    snprintf(buf, sizeof buf, "%.0fm", s / 60);
  else
    snprintf(buf, sizeof buf, "%.1fh", s / 3600);
  return buf;
}

Json json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  if (v == 0) return 0.0;
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

Json json_number(std::optional<double> v) { return v ? json_number(*v) : Json(nullptr); }

Json json_time(double unix_seconds) {
  if (!std::isfinite(unix_seconds)) return nullptr;
  return std::round(unix_seconds * 1000.0) / 1000.0;
}

std::string json_dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string json_escape(const std::string& s) {
  std::string quoted = json_dump(Json(s));
  return quoted.substr(1, quoted.size() - 2);
}

std::string valid_utf8(const std::string& s) {
  return Json::parse(json_dump(Json(s))).get<std::string>();
}

int usage_error(const char* prog, const std::string& what) {
  fprintf(stderr, "%s: %s (see %s --help)\n", prog, what.c_str(), prog);
  return 2;
}

}  // namespace hz3top
