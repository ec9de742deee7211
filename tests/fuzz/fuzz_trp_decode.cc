// TRP/1 frames from a peer (common/protocol.h): decode_message refuses with ProtocolError and
// nothing else; whatever it accepts encodes again without throwing.
#include <cstdint>
#include <string>
#include <vector>

#include "common/protocol.h"

// The input is the frames, separated by NUL bytes (frames of real messages hold none but CHUNK
// data).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> frames(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0)
      frames.emplace_back();
    else
      frames.back().push_back(char(data[i]));
  }
  try {
    const tallrec::Message m = tallrec::decode_message(frames);
    (void)tallrec::encode_message(m);
  } catch (const tallrec::ProtocolError&) {
  }
  return 0;
}
