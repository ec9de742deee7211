// Errors that reach a user. Every message names what was wrong and where (file, line, field).
#pragma once

#include <stdexcept>
#include <string>

namespace tallrec {

// A failure of the program or its environment (I/O, network, a bug). Exit code 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The user's input is wrong: a malformed file, a bad flag value. Exit code 2.
class InputError : public Error {
 public:
  using Error::Error;
};

// "path:line: message", the shape compilers use, so editors can jump to it.
inline InputError input_error_at(const std::string& path, size_t line, const std::string& what) {
  return InputError(path + ":" + std::to_string(line) + ": " + what);
}

}  // namespace tallrec
