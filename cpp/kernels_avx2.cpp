// avx2 instantiation of the hot kernels (see kernels_impl.hpp); compiled with its own target flags.
#define MC_ISA_NS isa_avx2
#define MC_VEC_BYTES 32
#define MC_ISA_NAME "avx2"
#define MC_TABLE_FN kernels_avx2
#include "kernels_impl.hpp"
