#include "common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace motifcore {

int default_num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int resolve_threads(int requested) { return requested > 0 ? requested : default_num_threads(); }

}  // namespace motifcore
