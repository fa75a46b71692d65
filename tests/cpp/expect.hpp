// The check macro of the C++ tests (no framework). EXPECT works in Release builds too (assert()
// would be compiled out by NDEBUG); main() returns non-zero when any EXPECT failed.
#pragma once

#include <cstdio>

namespace motifcore_test {

inline int g_failures = 0;

/// True if f() throws an E (and nothing else).
template <class E, class F>
bool throws(F&& f) {
    try {
        f();
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

}  // namespace motifcore_test

#define EXPECT(cond)                                                                        \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            std::fprintf(stderr, "%s:%d: EXPECT(%s) failed\n", __FILE__, __LINE__, #cond); \
            ++motifcore_test::g_failures;                                                   \
        }                                                                                   \
    } while (0)
