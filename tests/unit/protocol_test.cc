#include "common/protocol.h"

#include <gtest/gtest.h>

namespace tallrec {
namespace {

std::string code_of(const std::vector<std::string>& frames) {
  try {
    decode_message(frames);
  } catch (const ProtocolError& e) {
    return e.code() + ": " + e.what();
  }
  return "accepted";
}

TEST(Protocol, RoundTrips) {
  Message lease{MessageType::kLease,
                {{"attempt", 7},
                 {"run", {{"id", 3}, {"key", "k"}, {"spec", {}}}},
                 {"lease_seconds", 30},
                 {"resume", nullptr}},
                ""};
  Message back = decode_message(encode_message(lease));
  EXPECT_EQ(back.type, MessageType::kLease);
  EXPECT_EQ(back.body, lease.body);
  Message chunk{MessageType::kChunk,
                {{"transfer", "t1"}, {"file", "a"}, {"offset", 0}, {"last", true}},
                std::string("\0\1\2", 3)};
  auto frames = encode_message(chunk);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(decode_message(frames).data, chunk.data);
}

TEST(Protocol, RefusesWhatDoesNotConform) {
  EXPECT_EQ(code_of({"TRP02", "REQUEST", "{\"slots_free\": 1}"}).substr(0, 8), "version:");
  EXPECT_EQ(code_of({"TRP01", "STEAL", "{}"}), "bad-message: unknown message type \"STEAL\"");
  EXPECT_EQ(code_of({"TRP01", "REQUEST", "{"}),
            "bad-message: REQUEST: the body is not a JSON object");
  EXPECT_EQ(code_of({"TRP01", "REQUEST", "{}"}),
            "bad-message: REQUEST: field \"slots_free\" is missing or of the wrong type");
  EXPECT_EQ(code_of({"TRP01", "ACK", "{\"attempt\": \"7\", \"seq\": 1}"}),
            "bad-message: ACK: field \"attempt\" is missing or of the wrong type");
  EXPECT_EQ(code_of({"TRP01", "HEARTBEAT", "{}", "extra"}), "bad-message: HEARTBEAT has 4 frames");
  EXPECT_EQ(code_of({"TRP01", "HEARTBEAT"}), "bad-message: expected at least 3 frames, got 2");
  EXPECT_EQ(code_of({"TRP01", "ERROR",
                     "{\"code\": \"x\", \"message\": \"" + std::string(1 << 20, 'a') + "\"}"})
                .substr(0, 10),
            "too-large:");
  EXPECT_EQ(code_of({"TRP01", "HEARTBEAT", "{}"}), "accepted");
}

}  // namespace
}  // namespace tallrec
