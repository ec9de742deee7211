#pragma once

namespace tallrec {
inline constexpr const char* kVersion = "0.1.0";
}
