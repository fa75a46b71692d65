#include "common.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <thread>

#include "parallel.hpp"

namespace motifcore {

void* panel_alloc(size_t bytes, bool huge_pages) {
    constexpr size_t huge = size_t(2) << 20;
    const size_t align = huge_pages && bytes >= huge ? huge : 64;
    const size_t rounded = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, rounded == 0 ? align : rounded);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == huge) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

int default_num_threads() {
    const unsigned hw = std::thread::hardware_concurrency();
    return usable_threads(hw == 0 ? 1 : static_cast<int>(hw));
}

}  // namespace motifcore
