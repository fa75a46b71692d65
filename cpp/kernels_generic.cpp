// generic instantiation of the hot kernels (see kernels_impl.hpp); compiled with its own target flags.
#define MC_ISA_NS isa_generic
#define MC_VEC_BYTES 16
#define MC_ISA_NAME "generic"
#define MC_TABLE_FN kernels_generic
#include "kernels_impl.hpp"
