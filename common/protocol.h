// TRP/1 messages (docs/dev/protocol.md) as frames: ["TRP01", TYPE, JSON body (, data)]. This is
// the codec only; the sockets (ZeroMQ ROUTER/DEALER) belong to the broker and the agent.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace tallrec {

enum class MessageType {
  kReady,
  kRequest,
  kLease,
  kNoWork,
  kHeartbeat,
  kEvent,
  kAck,
  kDone,
  kCancel,
  kOffer,
  kCredit,
  kChunk,
  kFetch,
  kError
};

inline constexpr const char* kProtocolVersion = "TRP01";
inline constexpr size_t kMaxMessageBytes = 1u << 20;  // frames 0-2
inline constexpr size_t kMaxChunkBytes = 4u << 20;    // frame 3 of CHUNK

struct Message {
  Message(MessageType t, nlohmann::json b = nlohmann::json::object(), std::string d = "")
      : type(t), body(std::move(b)), data(std::move(d)) {}
  MessageType type;
  nlohmann::json body;
  std::string data;  // CHUNK only
};

// A message that must be refused; `code` is the ERROR code to answer with.
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(std::string code, const std::string& what)
      : std::runtime_error(what), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

const char* message_type_name(MessageType t);
std::vector<std::string> encode_message(const Message& m);

// Every message type's name and the body fields the decoder requires (what schemas/trp1.schema.json
// must say too; tests/unit/schema_test.cc checks that they agree).
std::vector<std::pair<std::string, std::vector<std::string>>> message_required_fields();
// A checkpoint folder's name: "step-" and eight digits. Transfers carry no other.
bool is_checkpoint_name(const std::string& name);
// A file name a transfer may carry: no path separators, not "." or "..", at most 128 bytes.
bool is_plain_file_name(const std::string& name);

// Checks version, type, frame count, sizes, JSON and each type's required fields.
Message decode_message(const std::vector<std::string>& frames);

}  // namespace tallrec
