#include "concurrency.hpp"

#include <algorithm>
#include <thread>

#include "common.hpp"

namespace motifcore {

int max_num_threads() {
    const unsigned hw = std::thread::hardware_concurrency();
    return std::max(8, 4 * static_cast<int>(hw == 0 ? 1 : hw));
}

int check_num_threads(int64_t n) {
    const int cap = max_num_threads();
    MC_CHECK(n >= 1 && n <= cap, "num_threads must be in [1, " << cap << "] (4 x the logical CPUs, at least 8), got "
                                                                << n);
    return static_cast<int>(n);
}

}  // namespace motifcore
