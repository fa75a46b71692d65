// Compile-time facts about this build of the engine.
#pragma once

#include <map>
#include <string>

namespace motifcore {

/// Compiler, flags, SIMD levels compiled and selected, threading backend, default thread count.
std::map<std::string, std::string> build_info();

}  // namespace motifcore
