// fixed_arena.cc linked with a page at 4 GiB, where hz3 puts its tag array (libhz3.mk).
#define HZ3_TEST_BLOCK_AT 0x100000000
#include "fixed_arena.cc"
