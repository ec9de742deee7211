// The broker on a real ROUTER socket on 127.0.0.1, driven by a real DEALER as a worker would.
#include "coordinator/broker.h"

#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/protocol.h"
#include "test_paths.h"

namespace tallrec {
namespace {

class FakeWorker {
 public:
  FakeWorker(zmq::context_t& ctx, const std::string& endpoint, const std::string& id) : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::routing_id, id);
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    socket_.connect(endpoint);
  }
  void send_frames(const std::vector<std::string>& frames) {
    std::vector<zmq::const_buffer> b;
    for (const auto& f : frames) b.push_back(zmq::buffer(f));
    zmq::send_multipart(socket_, b);
  }
  void send(MessageType t, const nlohmann::json& body) { send_frames(encode_message({t, body, ""})); }
  Message receive() {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket_, std::back_inserter(parts))) throw std::runtime_error("no reply within 5 s");
    std::vector<std::string> frames;
    for (auto& p : parts) frames.push_back(p.to_string());
    return decode_message(frames);
  }
  Message ask(MessageType t, const nlohmann::json& body) {
    send(t, body);
    return receive();
  }

 private:
  zmq::socket_t socket_;
};

nlohmann::json two_run_grid() {
  return {{"name", "b"}, {"base_model", "/m"}, {"tokenizer", "/t"},
          {"datasets", {{"movie", {{"train", "a"}, {"valid", "b"}, {"test", "c"}}}}},
          {"domains", {"movie"}}, {"samples", {16}}, {"seeds", {0, 1}}};
}

TEST(Broker, LeasesRelaysEventsAndFencesStaleAttempts) {
  test::ScratchDir dir;
  Store store(dir / "b.db");
  store.submit(parse_grid(two_run_grid().dump(), "b"));
  Store broker_store(dir / "b.db");  // the broker's own connection, as in the coordinator
  Broker broker(broker_store, "tcp://127.0.0.1:*", dir / "artifacts", RetryPolicy{1.0, 0.1, 1.0});
  std::atomic<bool> stop{false};
  std::thread serving([&] { broker.serve(stop); });

  zmq::context_t ctx;
  FakeWorker w(ctx, broker.endpoint(), "w1");
  w.send(MessageType::kReady, {{"worker", "w1"}, {"host", "h"}, {"version", "0.1.0"}, {"slots", 1},
                               {"gpus", nlohmann::json::array()}, {"attempts", nlohmann::json::array()}});
  Message lease = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  ASSERT_EQ(lease.type, MessageType::kLease);
  const int64_t attempt = lease.body["attempt"];
  EXPECT_EQ(lease.body["run"]["spec"]["sample"], 16);

  Message ack = w.ask(MessageType::kEvent, {{"attempt", attempt}, {"seq", 1}, {"event", {{"type", "started"}}}});
  EXPECT_EQ(ack.type, MessageType::kAck);
  EXPECT_EQ(ack.body["seq"], 1);
  // A re-sent event (after a reconnect) is acknowledged again and stored once.
  EXPECT_EQ(w.ask(MessageType::kEvent, {{"attempt", attempt}, {"seq", 1}, {"event", {{"type", "started"}}}}).type,
            MessageType::kAck);
  w.ask(MessageType::kEvent, {{"attempt", attempt}, {"seq", 2},
                              {"event", {{"type", "progress"}, {"step", 1}, {"loss", 2.5}, {"lr", 0.0}}}});
  w.ask(MessageType::kEvent, {{"attempt", attempt}, {"seq", 3},
                              {"event", {{"type", "finished"}, {"test_auc", {{"movie", 0.61}}}}}});
  EXPECT_EQ(store.event_count(attempt), 3);
  Message done = w.ask(MessageType::kDone, {{"attempt", attempt}, {"seq", 4}, {"exit_code", 0}, {"signal", nullptr},
                                            {"stderr_tail", ""}});
  EXPECT_EQ(done.type, MessageType::kAck);
  EXPECT_EQ(store.run_state(lease.body["run"]["id"]), "succeeded");
  EXPECT_EQ(store.results("b").size(), 1u);

  // The second run: the worker goes silent past its 1 s lease, then comes back.
  Message second = w.ask(MessageType::kRequest, {{"slots_free", 1}});
  ASSERT_EQ(second.type, MessageType::kLease);
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));
  Message refused = w.ask(MessageType::kEvent, {{"attempt", second.body["attempt"]}, {"seq", 1},
                                                {"event", {{"type", "finished"}, {"test_auc", {{"movie", 0.9}}}}}});
  EXPECT_EQ(refused.type, MessageType::kError);
  EXPECT_EQ(refused.body["code"], "stale-attempt");
  EXPECT_EQ(store.run_state(second.body["run"]["id"]), "queued") << "the lost lease sent the run back to the queue";

  // Malformed input gets a clear refusal; the broker keeps serving.
  w.send_frames({"TRP01", "REQUEST", "{not json"});
  Message bad = w.receive();
  EXPECT_EQ(bad.type, MessageType::kError);
  EXPECT_EQ(bad.body["code"], "bad-message");
  EXPECT_EQ(w.ask(MessageType::kRequest, {{"slots_free", 1}}).type, MessageType::kLease);

  stop = true;
  serving.join();
  EXPECT_EQ(store.integrity_check(), "ok");
}

}  // namespace
}  // namespace tallrec
