// Wall-clock time as the store records it: seconds since the Unix epoch, as a double.
#pragma once

#include <chrono>

namespace tallrec {

inline double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace tallrec
