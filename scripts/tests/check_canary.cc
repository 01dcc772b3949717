// Canary of libhz3/tests/check.h for scripts/tests/t_harness.sh: each case fails one kind of check
// on a known line, and one case passes, so the script can assert what a FAIL line carries
// (file:line, the expressions, both values) and that a passing case still says PASS.
#include <string>

#include "check.h"

namespace {

int seven() { return 7; }
std::string word() { return "tab\there"; }

}  // namespace

int main(int argc, char** argv) {
  hz3::test::init("canary", argc, argv);
  hz3::test::run_case("eq_int", [] { CHECK_EQ(seven(), 8u); });                  // line 17
  hz3::test::run_case("eq_str", [] { CHECK_EQ_STR(word(), "tab here"); });       // line 18
  hz3::test::run_case("checkf", [] { CHECKF(seven() < 0, "seven is %d", 7); });  // line 19
  hz3::test::run_case("two_failures", [] {
    CHECK(seven() == 1);  // line 21: the first failure is the one shown
    CHECK(seven() == 2);
  });
  hz3::test::run_case("passes", [] {
    CHECK_EQ(seven(), 7);
    CHECK_EQ(-1, -1L);
    CHECK_EQ_STR(word(), "tab\there");
  });
  return hz3::test::finish();
}
