#include "common/protocol.h"

#include <algorithm>
#include <regex>

#include "common/json_text.h"

namespace tallrec {
namespace {

using json = nlohmann::json;
enum class Kind { kInt, kString, kBool, kObject, kArray, kAny };

struct Field {
  const char* name;
  Kind kind;
};

struct TypeInfo {
  MessageType type;
  const char* name;
  std::vector<Field> required;
};

const std::vector<TypeInfo>& types() {
  static const std::vector<TypeInfo> t = {
      {MessageType::kReady,
       "READY",
       {{"worker", Kind::kString},
        {"host", Kind::kString},
        {"version", Kind::kString},
        {"slots", Kind::kInt},
        {"gpus", Kind::kArray},
        {"attempts", Kind::kArray}}},
      {MessageType::kRequest, "REQUEST", {{"slots_free", Kind::kInt}}},
      {MessageType::kLease,
       "LEASE",
       {{"attempt", Kind::kInt},
        {"run", Kind::kObject},
        {"lease_seconds", Kind::kAny},
        {"resume", Kind::kAny}}},
      {MessageType::kNoWork, "NOWORK", {{"retry_after_ms", Kind::kInt}}},
      {MessageType::kHeartbeat, "HEARTBEAT", {}},
      {MessageType::kEvent,
       "EVENT",
       {{"attempt", Kind::kInt}, {"seq", Kind::kInt}, {"event", Kind::kObject}}},
      {MessageType::kAck, "ACK", {{"attempt", Kind::kInt}, {"seq", Kind::kInt}}},
      {MessageType::kDone,
       "DONE",
       {{"attempt", Kind::kInt},
        {"seq", Kind::kInt},
        {"exit_code", Kind::kInt},
        {"signal", Kind::kAny},
        {"stderr_tail", Kind::kString}}},
      {MessageType::kCancel, "CANCEL", {{"attempt", Kind::kInt}}},
      {MessageType::kOffer,
       "OFFER",
       {{"attempt", Kind::kInt}, {"transfer", Kind::kString}, {"checkpoint", Kind::kObject}}},
      {MessageType::kCredit, "CREDIT", {{"transfer", Kind::kString}, {"chunks", Kind::kInt}}},
      {MessageType::kChunk,
       "CHUNK",
       {{"transfer", Kind::kString},
        {"file", Kind::kString},
        {"offset", Kind::kInt},
        {"last", Kind::kBool}}},
      {MessageType::kFetch,
       "FETCH",
       {{"attempt", Kind::kInt},
        {"transfer", Kind::kString},
        {"checkpoint", Kind::kString},
        {"chunks", Kind::kInt}}},
      {MessageType::kError, "ERROR", {{"code", Kind::kString}, {"message", Kind::kString}}},
  };
  return t;
}

bool has_kind(const json& v, Kind k) {
  switch (k) {
    case Kind::kInt:
      return v.is_number_integer();
    case Kind::kString:
      return v.is_string();
    case Kind::kBool:
      return v.is_boolean();
    case Kind::kObject:
      return v.is_object();
    case Kind::kArray:
      return v.is_array();
    case Kind::kAny:
      return true;
  }
  return false;
}

}  // namespace

bool is_checkpoint_name(const std::string& name) {
  static const std::regex pattern("step-[0-9]{8}");
  return std::regex_match(name, pattern);
}

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name.size() <= 128 && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

const char* message_type_name(MessageType t) {
  for (const auto& info : types())
    if (info.type == t) return info.name;
  return "?";
}

std::vector<std::pair<std::string, std::vector<std::string>>> message_required_fields() {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& t : types()) {
    std::vector<std::string> fields;
    for (const auto& f : t.required) fields.push_back(f.name);
    out.push_back({t.name, fields});
  }
  return out;
}

std::vector<std::string> encode_message(const Message& m) {
  std::vector<std::string> frames{kProtocolVersion, message_type_name(m.type), dump_json(m.body)};
  if (m.type == MessageType::kChunk) frames.push_back(m.data);
  return frames;
}

Message decode_message(const std::vector<std::string>& frames) {
  if (frames.size() < 3)
    throw ProtocolError("bad-message",
                        "expected at least 3 frames, got " + std::to_string(frames.size()));
  if (frames[0] != kProtocolVersion)
    throw ProtocolError("version",
                        "unsupported protocol \"" + printable_utf8(frames[0].substr(0, 16)) + "\"");
  const auto it = std::find_if(types().begin(), types().end(),
                               [&](const TypeInfo& t) { return frames[1] == t.name; });
  if (it == types().end())
    throw ProtocolError("bad-message",
                        "unknown message type \"" + printable_utf8(frames[1].substr(0, 32)) + "\"");
  const bool chunk = it->type == MessageType::kChunk;
  if (frames.size() != (chunk ? 4u : 3u)) {
    throw ProtocolError(
        "bad-message", std::string(it->name) + " has " + std::to_string(frames.size()) + " frames");
  }
  if (frames[0].size() + frames[1].size() + frames[2].size() > kMaxMessageBytes) {
    throw ProtocolError("too-large", std::string(it->name) + " exceeds " +
                                         std::to_string(kMaxMessageBytes) + " bytes");
  }
  if (chunk && frames[3].size() > kMaxChunkBytes) {
    throw ProtocolError("too-large",
                        "CHUNK data exceeds " + std::to_string(kMaxChunkBytes) + " bytes");
  }
  if (find_json_too_deep(frames[2]) != std::string::npos)
    throw ProtocolError("bad-message", std::string(it->name) + ": the body nests deeper than " +
                                           std::to_string(kMaxJsonDepth) + " levels");
  Message m{it->type, json::parse(frames[2], nullptr, /*allow_exceptions=*/false),
            chunk ? frames[3] : std::string()};
  if (m.body.is_discarded() || !m.body.is_object()) {
    throw ProtocolError("bad-message", std::string(it->name) + ": the body is not a JSON object");
  }
  for (const Field& f : it->required) {
    auto v = m.body.find(f.name);
    if (v == m.body.end() || !has_kind(*v, f.kind)) {
      throw ProtocolError("bad-message", std::string(it->name) + ": field \"" + f.name +
                                             "\" is missing or of the wrong type");
    }
  }
  return m;
}

}  // namespace tallrec
