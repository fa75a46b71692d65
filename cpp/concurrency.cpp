#include "concurrency.hpp"

#include <thread>

#include "common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace motifcore {

int max_num_threads() {
    const unsigned hw = std::thread::hardware_concurrency();
    int cap = std::max(8, 4 * static_cast<int>(hw == 0 ? 1 : hw));
#ifdef _OPENMP
    cap = std::min(cap, std::max(1, omp_get_thread_limit()));
#endif
    return cap;
}

int check_num_threads(int64_t n) {
    const int cap = max_num_threads();
    MC_CHECK(n >= 1 && n <= cap, "num_threads must be in [1, " << cap << "] (4 x the logical CPUs, at least 8), got "
                                                                << n);
    return static_cast<int>(n);
}

}  // namespace motifcore
