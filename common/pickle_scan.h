// A walk over a Python pickle's opcodes that checks every length it declares against the bytes
// that follow, before anything unpickles it. libtorch's Unpickler allocates (and zero-fills) the
// length a string or bytes opcode claims before it reads them, so a 100-byte data.pkl could ask
// for gigabytes (fuzz_torch_bin found it); this walk refuses such a file in linear time, with no
// allocation. It does not interpret the pickle: that is the unpickler's job.
#pragma once

#include <string>
#include <string_view>

namespace tallrec {

// Throws InputError "ORIGIN: damaged pickle: ..." when an opcode is unknown, an argument runs
// past the end, a declared length exceeds what remains, or there is no STOP.
void check_pickle_lengths(std::string_view pickle, const std::string& origin);

}  // namespace tallrec
