// The worker agent (worker/agent.h) against a coordinator played by the test on a real ROUTER
// socket on 127.0.0.1: what it says first, how it asks for work and stops when there is none,
// how a lease it cannot prepare ends, and when it gives up on a silent coordinator.
#include "worker/agent.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "common/exit_codes.h"
#include "common/version.h"
#include "test_paths.h"
#include "trp_peer.h"

namespace tallrec {
namespace {
using json = nlohmann::json;

// run_agent on a thread of its own; its return value through the future.
struct RunningAgent {
  RunningAgent(AgentOptions o) : options(std::move(o)) {
    result = std::async(std::launch::async, [this] { return run_agent(options, stop); });
  }
  ~RunningAgent() {
    stop = true;
    if (result.valid()) result.wait();
  }
  // The agent's return value, or -1000 if it has not returned within `seconds`.
  int returned_within(double seconds) {
    if (result.wait_for(std::chrono::duration<double>(seconds)) != std::future_status::ready)
      return -1000;
    return result.get();
  }
  AgentOptions options;
  std::atomic<bool> stop{false};
  std::future<int> result;
};

AgentOptions options_for(const test::TrpPeer& coordinator, const test::ScratchDir& dir) {
  AgentOptions o;
  o.coordinator = coordinator.endpoint();
  o.id = "agent-test";
  o.work_dir = dir.path();
  o.exit_when_idle = true;
  return o;
}

TEST(Agent, SaysReadyAsksForEverySlotAndStopsWhenToldThereIsNoWork) {
  test::ScratchDir dir;
  test::TrpPeer coordinator = test::TrpPeer::coordinator();
  AgentOptions o = options_for(coordinator, dir);
  o.slots = 2;
  RunningAgent agent(o);
  auto ready = coordinator.wait_for(MessageType::kReady);
  ASSERT_TRUE(ready);
  EXPECT_EQ(coordinator.peer(), "agent-test");
  EXPECT_EQ(ready->body["worker"], "agent-test");
  EXPECT_EQ(ready->body["version"], kVersion);
  EXPECT_EQ(ready->body["slots"], 2);
  EXPECT_EQ(ready->body["attempts"], json::array());
  auto request = coordinator.wait_for(MessageType::kRequest);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->body["slots_free"], 2);
  coordinator.send(MessageType::kNoWork, {{"retry_after_ms", 100}});
  EXPECT_EQ(agent.returned_within(5), 0);
}

// Bad data fails the run (exit 2, not retried) and says why; the agent reports it, waits for
// the ACKs and goes on asking for work.
TEST(Agent, ALeaseItCannotPrepareEndsTheAttemptWithTheReason) {
  test::ScratchDir dir;
  test::TrpPeer coordinator = test::TrpPeer::coordinator();
  RunningAgent agent(options_for(coordinator, dir));
  ASSERT_TRUE(coordinator.wait_for(MessageType::kRequest));
  const std::string tokenizer = (dir.path() / "no-such-tokenizer.model").string();
  coordinator.send(
      MessageType::kLease,
      {{"attempt", 7},
       {"number", 1},
       {"run", {{"id", 1}, {"key", std::string(64, 'a')}, {"spec", {{"tokenizer", tokenizer}}}}},
       {"lease_seconds", 30},
       {"resume", nullptr},
       {"batch", nullptr}});
  auto failed = coordinator.wait_for(MessageType::kEvent);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->body["attempt"], 7);
  EXPECT_EQ(failed->body["event"]["type"], "failed");
  EXPECT_EQ(failed->body["event"]["retryable"], false);
  EXPECT_NE(failed->body["event"]["reason"].get<std::string>().find(tokenizer), std::string::npos)
      << failed->body.dump();
  coordinator.send(MessageType::kAck, {{"attempt", 7}, {"seq", failed->body["seq"]}});
  auto done = coordinator.wait_for(MessageType::kDone);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->body["exit_code"], kBadInputExitCode);
  EXPECT_NE(done->body["stderr_tail"].get<std::string>().find(tokenizer), std::string::npos);
  coordinator.send(MessageType::kAck, {{"attempt", 7}, {"seq", done->body["seq"]}});
  // Heartbeats stop listing the attempt once its DONE is acknowledged, and the free slot asks
  // for work again.
  bool forgotten = false, asked = false;
  for (int i = 0; i < 100 && !(forgotten && asked); ++i)
    if (auto m = coordinator.poll(100)) {
      forgotten |= m->type == MessageType::kHeartbeat && m->body["attempts"] == json::array();
      asked |= m->type == MessageType::kRequest;
    }
  EXPECT_TRUE(forgotten);
  ASSERT_TRUE(asked);
  coordinator.send(MessageType::kNoWork, {{"retry_after_ms", 100}});
  EXPECT_EQ(agent.returned_within(5), 0);
}

TEST(Agent, GivesUpOnACoordinatorThatNeverAnswers) {
  test::ScratchDir dir;
  test::TrpPeer coordinator = test::TrpPeer::coordinator();
  AgentOptions o = options_for(coordinator, dir);
  o.give_up_after = 1;
  RunningAgent agent(o);
  EXPECT_EQ(agent.returned_within(5), 1);
}

TEST(Agent, AStopWhileIdleReturnsAtOnce) {
  test::ScratchDir dir;
  test::TrpPeer coordinator = test::TrpPeer::coordinator();
  AgentOptions o = options_for(coordinator, dir);
  o.exit_when_idle = false;
  RunningAgent agent(o);
  ASSERT_TRUE(coordinator.wait_for(MessageType::kRequest));
  agent.stop = true;
  EXPECT_EQ(agent.returned_within(2), 0);
}

}  // namespace
}  // namespace tallrec
