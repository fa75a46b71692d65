#include "build_info.hpp"

#include "common.hpp"
#include "float_mode.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

#ifndef MOTIFCORE_CXX_FLAGS
#define MOTIFCORE_CXX_FLAGS "unknown"
#endif
#ifndef MOTIFCORE_BUILD_TYPE
#define MOTIFCORE_BUILD_TYPE "unknown"
#endif

namespace motifcore {

std::map<std::string, std::string> build_info() {
    std::map<std::string, std::string> info;
#if defined(__clang__)
    info["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    info["compiler"] = std::string("gcc ") + __VERSION__;
#else
    info["compiler"] = "unknown";
#endif
    info["cxx_flags"] = MOTIFCORE_CXX_FLAGS;
    info["build_type"] = MOTIFCORE_BUILD_TYPE;
#ifdef MOTIFCORE_HAVE_X86_KERNELS
    info["simd_compiled"] = "generic,avx2,avx512";
#else
    info["simd_compiled"] = "generic";
#endif
    info["simd_best"] = best_simd_level();
    info["simd"] = kernels().name;
    info["threading"] = threading_backend();
    info["subnormals"] = FlushSubnormals::kBits != 0 ? "flushed to zero in engine calls (FTZ+DAZ)"
                                                    : "IEEE (no flush control known for this CPU)";
    info["default_threads"] = std::to_string(default_num_threads());
    return info;
}

}  // namespace motifcore
