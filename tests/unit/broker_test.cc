// The broker on a real ROUTER socket on 127.0.0.1, driven by a real DEALER as a worker would.
#include "coordinator/broker.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/protocol.h"
#include "common/sha256.h"
#include "grid_text.h"
#include "test_paths.h"
#include "trp_peer.h"

namespace tallrec {
namespace {

nlohmann::json two_run_grid() { return test::movie_grid({{"name", "b"}}); }

// A broker serving a two-run grid's store on a thread of its own, as `tallrec coordinator` does.
struct ServingBroker {
  ServingBroker(const std::filesystem::path& dir, RetryPolicy policy) : store(dir / "b.db") {
    store.queue.submit(parse_grid(two_run_grid().dump(), "b"));
    broker = std::make_unique<Broker>(store, "tcp://127.0.0.1:*", dir / "artifacts", policy);
    serving = std::thread([this] { broker->serve(stop); });
  }
  ~ServingBroker() {
    stop = true;
    serving.join();
  }
  Store store;
  std::unique_ptr<Broker> broker;
  std::atomic<bool> stop{false};
  std::thread serving;
};

TEST(Broker, LeasesRelaysEventsAndFencesStaleAttempts) {
  test::ScratchDir dir;
  Store store(dir / "b.db");
  store.queue.submit(parse_grid(two_run_grid().dump(), "b"));
  Store broker_store(dir / "b.db");  // the broker's own connection, as in the coordinator
  Broker broker(broker_store, "tcp://127.0.0.1:*", dir / "artifacts", RetryPolicy{1.0, 0.1, 1.0});
  std::atomic<double> skipped{0};  // seconds the test moved the broker's clock on
  broker.set_clock([&] { return unix_time() + skipped.load(); });
  std::atomic<bool> stop{false};
  std::thread serving([&] { broker.serve(stop); });

  test::TrpPeer w = test::TrpPeer::worker(broker.endpoint(), "w1");
  w.send(MessageType::kReady, {{"worker", "w1"},
                               {"host", "h"},
                               {"version", "0.1.0"},
                               {"slots", 1},
                               {"gpus", nlohmann::json::array()},
                               {"attempts", nlohmann::json::array()}});
  Message lease = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  ASSERT_EQ(lease.type, MessageType::kLease);
  const int64_t attempt = lease.body["attempt"];
  EXPECT_EQ(lease.body["run"]["spec"]["sample"], 16);

  Message ack = w.ask(MessageType::kEvent,
                      {{"attempt", attempt}, {"seq", 1}, {"event", {{"type", "started"}}}});
  EXPECT_EQ(ack.type, MessageType::kAck);
  EXPECT_EQ(ack.body["seq"], 1);
  // A re-sent event (after a reconnect) is acknowledged again and stored once.
  EXPECT_EQ(w.ask(MessageType::kEvent,
                  {{"attempt", attempt}, {"seq", 1}, {"event", {{"type", "started"}}}})
                .type,
            MessageType::kAck);
  w.ask(MessageType::kEvent,
        {{"attempt", attempt},
         {"seq", 2},
         {"event", {{"type", "progress"}, {"step", 1}, {"loss", 2.5}, {"lr", 0.0}}}});
  w.ask(MessageType::kEvent, {{"attempt", attempt},
                              {"seq", 3},
                              {"event", {{"type", "finished"}, {"test_auc", {{"movie", 0.61}}}}}});
  EXPECT_EQ(store.views.event_count(attempt), 3);
  Message done = w.ask(MessageType::kDone, {{"attempt", attempt},
                                            {"seq", 4},
                                            {"exit_code", 0},
                                            {"signal", nullptr},
                                            {"stderr_tail", ""}});
  EXPECT_EQ(done.type, MessageType::kAck);
  EXPECT_EQ(store.views.run_state(lease.body["run"]["id"]), RunState::kSucceeded);
  EXPECT_EQ(store.views.results("b").size(), 1u);

  // The second run: the worker goes silent past its 1 s lease, then comes back.
  Message second = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  ASSERT_EQ(second.type, MessageType::kLease);
  skipped = 2.3;
  for (int i = 0; i < 200 && store.views.run_state(second.body["run"]["id"]) != RunState::kQueued;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the broker's next expiry pass
  Message refused = w.ask(MessageType::kEvent,
                          {{"attempt", second.body["attempt"]},
                           {"seq", 1},
                           {"event", {{"type", "finished"}, {"test_auc", {{"movie", 0.9}}}}}});
  EXPECT_EQ(refused.type, MessageType::kError);
  EXPECT_EQ(refused.body["code"], "stale-attempt");
  EXPECT_EQ(store.views.run_state(second.body["run"]["id"]), RunState::kQueued)
      << "the lost lease sent the run back to the queue";

  skipped = 4.3;  // past the requeued run's backoff (backoff_max 1 s)

  // Malformed input gets a clear refusal; the broker keeps serving.
  w.send_frames({"TRP01", "REQUEST", "{not json"});
  Message bad = w.receive();
  EXPECT_EQ(bad.type, MessageType::kError);
  EXPECT_EQ(bad.body["code"], "bad-message");
  EXPECT_EQ(w.ask(MessageType::kRequest, {{"slots_free", 1}}).type, MessageType::kLease);

  stop = true;
  serving.join();
  EXPECT_EQ(store.database.integrity_check(), "ok");
}

// Uploads `files` (name -> bytes) as checkpoint `name` under CREDIT; returns the final answer.
Message upload(test::TrpPeer& w, int64_t attempt, const std::string& transfer,
               const std::string& name, const std::map<std::string, std::string>& files,
               const std::map<std::string, std::string>& offered_sha) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [f, bytes] : files)
    list.push_back({{"name", f},
                    {"bytes", bytes.size()},
                    {"sha256", offered_sha.count(f) ? offered_sha.at(f) : sha256_hex(bytes)}});
  Message credit = w.ask(
      MessageType::kOffer,
      {{"attempt", attempt},
       {"transfer", transfer},
       {"checkpoint", {{"name", name}, {"step", std::stoll(name.substr(5))}, {"files", list}}}});
  if (credit.type != MessageType::kCredit || credit.body.value("stored", false)) return credit;
  int64_t granted = credit.body["chunks"];
  std::vector<Message> chunks;
  for (const auto& [f, bytes] : files) {
    for (size_t at = 0; at == 0 || at < bytes.size(); at += 1u << 20) {
      const std::string data = bytes.substr(at, 1u << 20);
      chunks.push_back({MessageType::kChunk,
                        {{"transfer", transfer},
                         {"file", f},
                         {"offset", at},
                         {"last", at + data.size() >= bytes.size()}},
                        data});
    }
  }
  Message last{MessageType::kError};
  for (size_t i = 0; i < chunks.size(); ++i) {
    while (granted == 0) {  // never more than granted: the ROUTER would drop the excess
      last = w.receive();
      if (last.type != MessageType::kCredit) return last;
      granted += last.body["chunks"].get<int64_t>();
    }
    w.send(MessageType::kChunk, chunks[i].body, chunks[i].data);
    --granted;
  }
  for (;;) {  // the answer to the last chunk: stored, or an error
    last = w.receive();
    if (last.type != MessageType::kCredit || last.body.value("stored", false)) return last;
  }
}

TEST(Broker, StoresACheckpointOnlyWhenEveryHashChecksAndStreamsItBackUnderCredit) {
  test::ScratchDir dir;
  ServingBroker serving(dir.path(), RetryPolicy{30.0, 0.1, 0.1});
  Store& store = serving.store;
  test::TrpPeer w = test::TrpPeer::worker(serving.broker->endpoint(), "w1");
  Message lease = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  ASSERT_EQ(lease.type, MessageType::kLease);
  EXPECT_TRUE(lease.body["resume"].is_null());
  const int64_t attempt = lease.body["attempt"], run = lease.body["run"]["id"];

  std::string adapter(2621440 + 7, '\0');  // three chunks
  for (size_t i = 0; i < adapter.size(); ++i) adapter[i] = char(i * 131 % 251);
  const std::string state = R"({"best_step": 10})";
  const std::string manifest = nlohmann::json{
      {"adapter_model.safetensors", sha256_hex(adapter)},
      {"state.json",
       sha256_hex(state)}}.dump();
  const std::map<std::string, std::string> files{
      {"adapter_model.safetensors", adapter}, {"state.json", state}, {"manifest.json", manifest}};

  // A file that does not hash as offered: refused, nothing recorded, nothing left on disk.
  Message bad = upload(w, attempt, "t1", "step-00000010", files,
                       {{"adapter_model.safetensors", std::string(64, 'a')}});
  EXPECT_EQ(bad.type, MessageType::kError);
  EXPECT_EQ(bad.body["code"], "bad-checkpoint");
  EXPECT_TRUE(store.checkpoints.of_run(run).empty());
  EXPECT_FALSE(std::filesystem::exists(
      dir / "artifacts" / "runs" / lease.body["run"]["key"].get<std::string>() / "step-00000010"));

  Message ok = upload(w, attempt, "t2", "step-00000010", files, {});
  ASSERT_EQ(ok.type, MessageType::kCredit) << ok.body.dump();
  ASSERT_EQ(store.checkpoints.of_run(run).size(), 1u);
  const auto stored = dir / "artifacts" / store.checkpoints.of_run(run)[0].path;
  EXPECT_EQ(read_file(stored / "adapter_model.safetensors"), adapter);
  EXPECT_EQ(store.checkpoints.of_run(run)[0].sha256, sha256_hex(manifest));
  // Offered again (after a reconnect): already stored, nothing to send.
  EXPECT_TRUE(upload(w, attempt, "t3", "step-00000010", files, {}).body.value("stored", false));

  // A manifest that names a file that was not offered (a path, say) is refused: resumes send what
  // it names.
  std::map<std::string, std::string> sneaky = files;
  sneaky["manifest.json"] = nlohmann::json{
      {"adapter_model.safetensors", sha256_hex(adapter)},
      {"state.json", sha256_hex(state)},
      {"../../t.db",
       sha256_hex("x")}}.dump();
  Message refused_manifest = upload(w, attempt, "t5", "step-00000012", sneaky, {});
  EXPECT_EQ(refused_manifest.body["code"], "bad-checkpoint") << refused_manifest.body.dump();
  EXPECT_EQ(store.checkpoints.of_run(run).size(), 1u);

  // Refusals: a path in a file name, a chunk of no open transfer.
  Message evil = w.ask(MessageType::kOffer,
                       {{"attempt", attempt},
                        {"transfer", "t4"},
                        {"checkpoint",
                         {{"name", "step-00000011"},
                          {"step", 11},
                          {"files", {{{"name", "../../evil"}, {"bytes", 1}, {"sha256", "x"}}}}}}});
  EXPECT_EQ(evil.body["code"], "bad-message");
  w.send(MessageType::kChunk, {{"transfer", "nope"}, {"file", "a"}, {"offset", 0}, {"last", true}},
         "x");
  EXPECT_EQ(w.receive().body["code"], "bad-message");

  // FETCH: the coordinator sends no more CHUNKs than granted.
  w.send(
      MessageType::kFetch,
      {{"attempt", attempt}, {"transfer", "f1"}, {"checkpoint", "step-00000010"}, {"chunks", 2}});
  std::map<std::string, std::string> got;
  auto take = [&](const Message& m) {
    EXPECT_EQ(m.type, MessageType::kChunk);
    EXPECT_EQ(m.body["offset"].get<size_t>(), got[m.body["file"]].size());
    got[m.body["file"]] += m.data;
  };
  take(w.receive());
  take(w.receive());
  EXPECT_FALSE(w.poll(300)) << "a third CHUNK without credit";
  w.send(MessageType::kCredit, {{"transfer", "f1"}, {"chunks", 100}});
  while (auto m = w.poll(300)) take(*m);
  EXPECT_EQ(got, files);

  // A failed attempt's next LEASE names the stored checkpoint to resume from.
  Message failed = w.ask(MessageType::kDone, {{"attempt", attempt},
                                              {"seq", 1},
                                              {"exit_code", 1},
                                              {"signal", nullptr},
                                              {"stderr_tail", "boom"}});
  EXPECT_EQ(failed.type, MessageType::kAck) << failed.body.dump();
  std::optional<Message> again;
  for (int i = 0;
       i < 50 && !(again && again->type == MessageType::kLease && again->body["run"]["id"] == run);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    again = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  }
  ASSERT_TRUE(again && again->body["run"]["id"] == run);
  const auto& resume = again->body["resume"]["checkpoints"];
  ASSERT_EQ(resume.size(), 1u);
  EXPECT_EQ(resume[0]["checkpoint"], "step-00000010");
  EXPECT_EQ(resume[0]["files"].size(), 3u);
}

TEST(Broker, ExitZeroWithoutAnOutcomeIsRetriedAndUnlistedLeasesAreReleased) {
  test::ScratchDir dir;
  RetryPolicy policy{30.0, 0.0, 0.0};
  policy.lease_arrival = 0.3;
  ServingBroker serving(dir.path(), policy);
  Store& store = serving.store;
  test::TrpPeer w = test::TrpPeer::worker(serving.broker->endpoint(), "w1");
  Message first = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  ASSERT_EQ(first.type, MessageType::kLease);
  // The trainer exited 0 but its `finished` line never came: not a success, and no crash either.
  Message done = w.ask(MessageType::kDone, {{"attempt", first.body["attempt"]},
                                            {"seq", 1},
                                            {"exit_code", 0},
                                            {"signal", nullptr},
                                            {"stderr_tail", ""}});
  EXPECT_EQ(done.type, MessageType::kAck) << done.body.dump();
  EXPECT_EQ(store.views.run_state(first.body["run"]["id"]), RunState::kQueued);
  // A lease the worker never lists in its heartbeats (its LEASE got lost) goes back, free of
  // charge.
  Message second = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  ASSERT_EQ(second.type, MessageType::kLease);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(w.ask(MessageType::kHeartbeat, {{"attempts", nlohmann::json::array()}}).type,
            MessageType::kHeartbeat);
  const auto detail = store.views.run_detail(second.body["run"]["id"]);
  EXPECT_EQ((*detail)["state"], "queued");
  EXPECT_EQ((*detail)["attempts_used"],
            second.body["run"]["id"] == first.body["run"]["id"] ? 1 : 0);
  EXPECT_EQ((*detail)["attempts"].back()["state"], "released");
}

TEST(Broker, RefusesOversizedMessagesAndKeepsServingOthers) {
  test::ScratchDir dir;
  ServingBroker serving(dir.path(), RetryPolicy{});
  Store& store = serving.store;
  test::TrpPeer big = test::TrpPeer::worker(serving.broker->endpoint(), "big");
  // Over the 1 MiB message limit but under the socket's: an ERROR names the limit.
  big.send_frames({"TRP01", "REQUEST",
                   nlohmann::json{{"slots_free", 1}, {"pad", std::string(2u << 20, 'x')}}.dump()});
  Message refused = big.receive();
  EXPECT_EQ(refused.body["code"], "too-large");
  // Over the socket's limit (CHUNK data + body): ZeroMQ drops it, and the connection with it.
  big.send_frames({"TRP01", "CHUNK", "{}", std::string(6u << 20, 'x')});
  test::TrpPeer other = test::TrpPeer::worker(serving.broker->endpoint(), "other");
  EXPECT_EQ(other.ask(MessageType::kRequest, {{"slots_free", 1}}).type, MessageType::kLease);
  EXPECT_EQ(store.views.runs("b", RunState::kLeased).size(), 1u)
      << "only the well-formed request leased a run";
}

}  // namespace
}  // namespace tallrec
