// avx512 instantiation of the hot kernels (see kernels_impl.hpp); compiled with its own target flags.
#define MC_ISA_NS isa_avx512
#define MC_VEC_BYTES 64
#define MC_ISA_NAME "avx512"
#define MC_TABLE_FN kernels_avx512
#include "kernels_impl.hpp"
