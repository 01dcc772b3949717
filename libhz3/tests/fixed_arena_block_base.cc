// fixed_arena.cc linked with a page at 4 TiB, where hz3 reserves its arena (libhz3.mk).
#define HZ3_TEST_BLOCK_AT 0x40000000000
#include "fixed_arena.cc"
