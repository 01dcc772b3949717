// A sparkline: one character per value, its height proportional to the value against the largest
// one (0 at the bottom). Block characters (U+2581 … U+2588) on a UTF-8 terminal, "_.-=+*#@"
// otherwise; a value that is not known (an interval without a hits report) is a blank.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace hz3top {

std::string sparkline(const std::vector<std::optional<double>>& values, bool utf8);

}  // namespace hz3top
