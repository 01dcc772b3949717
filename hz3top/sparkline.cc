// Behind sparkline.h.
#include "sparkline.h"

#include <algorithm>
#include <cmath>

namespace hz3top {

std::string sparkline(const std::vector<std::optional<double>>& values, bool utf8) {
  static const char* const BLOCKS[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588"};
  static const char ASCII[] = "_.-=+*#@";
  double peak = 0;
  for (const auto& v : values)
    if (v && std::isfinite(*v)) peak = std::max(peak, *v);
  std::string s;
  for (const auto& v : values) {
    if (!v || !std::isfinite(*v)) {
      s += ' ';
      continue;
    }
    int level = peak > 0 ? int(std::lround(std::max(0.0, *v) / peak * 7)) : 0;
    level = std::clamp(level, 0, 7);
    if (utf8)
      s += BLOCKS[level];
    else
      s += ASCII[level];
  }
  return s;
}

}  // namespace hz3top
