// The worker's checkpoint transfers (worker/checkpoint_sync.h) against a coordinator played by
// the test on a real ROUTER socket on 127.0.0.1: the fetch and the upload are pumped objects,
// so the test drives them as the agent's loop does (pump, receive, handle).
#include "worker/checkpoint_sync.h"

#include <chrono>
#include <fstream>
#include <functional>
#include <random>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/protocol.h"
#include "common/sha256.h"
#include "test_paths.h"

namespace tallrec {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// The coordinator's end: a ROUTER that hands each message to the test and sends its answers
// to the one worker that spoke.
class FakeCoordinator {
 public:
  FakeCoordinator() : socket_(context_, zmq::socket_type::router) {
    socket_.bind("tcp://127.0.0.1:*");
  }
  std::string endpoint() const { return socket_.get(zmq::sockopt::last_endpoint); }
  std::optional<Message> poll(int ms) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(ms));
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    std::vector<zmq::message_t> parts;
    (void)zmq::recv_multipart(socket_, std::back_inserter(parts));
    peer_ = parts.at(0).to_string();
    std::vector<std::string> frames;
    for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string());
    return decode_message(frames);
  }
  void send(MessageType t, const json& body, const std::string& data = "") {
    std::vector<std::string> frames = encode_message({t, body, data});
    frames.insert(frames.begin(), peer_);
    std::vector<zmq::const_buffer> b;
    for (const auto& f : frames) b.push_back(zmq::buffer(f));
    zmq::send_multipart(socket_, b);
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string peer_;
};

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(g());
  return s;
}

// A stored checkpoint as the coordinator keeps it: its files, and LEASE's `resume` naming them.
struct Stored {
  std::map<std::string, std::string> files;
  json resume() const {
    json list = json::array();
    for (const auto& [name, bytes] : files)
      list.push_back({{"name", name}, {"bytes", bytes.size()}, {"sha256", sha256_hex(bytes)}});
    return {{"checkpoints", {{{"checkpoint", "step-00000004"}, {"files", list}}}}};
  }
};

// Serves FETCHes of `stored` as checkpoint_transfers.cc does: file after file, in chunks of
// kChunkDataBytes, never more than the credit. `damage` changes what is sent of try k.
struct FetchServer {
  FetchServer(FakeCoordinator& coordinator, const Stored& files) : c(coordinator), stored(files) {}
  FakeCoordinator& c;
  const Stored& stored;
  std::function<std::string(int, const std::string&)> damage = [](int, const std::string& s) {
    return s;
  };
  int fetches = 0;
  std::vector<std::string> transfers;
  std::string transfer;
  int64_t credit = 0;
  std::map<std::string, std::string>::const_iterator file;
  size_t offset = 0;

  void take(const Message& m) {
    if (m.type == MessageType::kFetch) {
      ++fetches;
      transfer = m.body["transfer"];
      transfers.push_back(transfer);
      credit = m.body["chunks"];
      file = stored.files.begin();
      offset = 0;
    } else if (m.type == MessageType::kCredit && m.body["transfer"] == transfer) {
      credit += m.body["chunks"].get<int64_t>();
    }
    while (credit > 0 && file != stored.files.end()) {
      const std::string bytes = damage(fetches, file->second);
      const size_t n = std::min(kChunkDataBytes, bytes.size() - offset);
      const bool last = offset + n >= bytes.size();
      c.send(MessageType::kChunk,
             {{"transfer", transfer}, {"file", file->first}, {"offset", offset}, {"last", last}},
             bytes.substr(offset, n));
      --credit;
      offset += n;
      if (last) {
        ++file;
        offset = 0;
      }
    }
  }
};

// Pumps the fetcher and serves it until it has a result (10 s at most).
std::optional<FetchResult> run_fetch(CheckpointFetcher& fetcher, CoordinatorLink& link,
                                     FakeCoordinator& c, FetchServer& server) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!fetcher.result() && std::chrono::steady_clock::now() < end) {
    fetcher.pump();
    while (auto m = c.poll(5)) server.take(*m);
    while (auto m = link.receive(5)) EXPECT_TRUE(fetcher.handle(*m)) << message_type_name(m->type);
  }
  return fetcher.result();
}

Stored two_files() {
  return {{{"adapter_model.safetensors", random_bytes(2 * kChunkDataBytes + 1234, 1)},
           {"state.json", "{\"step\": 4}"}}};
}

// One coordinator, one worker link, a stored checkpoint of two files, and the fetch of it.
class CheckpointFetch : public ::testing::Test {
 protected:
  std::optional<FetchResult> run() { return run_fetch(fetcher, link, c, server); }
  test::ScratchDir dir;
  FakeCoordinator c;
  CoordinatorLink link{c.endpoint(), "w1"};
  const Stored stored = two_files();
  FetchServer server{c, stored};
  CheckpointFetcher fetcher{link, 7, stored.resume(), dir / "checkpoints"};
};

TEST_F(CheckpointFetch, FetchesInChunksWithinTheCreditAndChecksEveryFile) {
  ASSERT_EQ(run(), FetchResult::kFetched);
  EXPECT_EQ(server.fetches, 1);
  for (const auto& [name, bytes] : stored.files)
    EXPECT_EQ(read_file(dir / "checkpoints" / "step-00000004" / name), bytes) << name;
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / ".fetch-step-00000004"));
}

TEST_F(CheckpointFetch, ADamagedCopyIsFetchedAgainUnderANewTransfer) {
  server.damage = [](int fetch, const std::string& s) {
    return fetch == 1 && s.size() > 100 ? s.substr(0, 100) + "X" + s.substr(101) : s;
  };
  ASSERT_EQ(run(), FetchResult::kFetched);
  EXPECT_EQ(server.fetches, 2);
  EXPECT_NE(server.transfers[0], server.transfers[1]);
  EXPECT_EQ(read_file(dir / "checkpoints" / "step-00000004" / "adapter_model.safetensors"),
            stored.files.at("adapter_model.safetensors"));
}

TEST_F(CheckpointFetch, GivesUpAfterThreeFailedTriesAndLeavesNoHalfCheckpoint) {
  server.damage = [](int, const std::string& s) { return s + "!"; };  // sizes never match
  ASSERT_EQ(run(), FetchResult::kFailed);
  EXPECT_EQ(server.fetches, 3);
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / "step-00000004"));
}

TEST_F(CheckpointFetch, AnErrorAnswerIsRetriedAndNothingToResumeIsDoneAtOnce) {
  fetcher.pump();  // FETCH #1, answered with an ERROR instead of chunks
  auto m = c.poll(2000);
  ASSERT_TRUE(m && m->type == MessageType::kFetch);
  c.send(MessageType::kError,
         {{"transfer", m->body["transfer"]}, {"code", "not-found"}, {"message", "gone"}});
  auto error = link.receive(2000);
  ASSERT_TRUE(error);
  EXPECT_TRUE(fetcher.handle(*error));
  EXPECT_FALSE(fetcher.result());
  ASSERT_EQ(run(), FetchResult::kFetched);
  EXPECT_EQ(server.fetches, 1);  // the server saw only the second FETCH

  CheckpointFetcher nothing(link, 8, json(), dir / "other");
  EXPECT_EQ(nothing.result(), FetchResult::kFetched);
  EXPECT_THROW(CheckpointFetcher malformed(link, 9, json{{"checkpoints", 3}}, dir / "x"),
               InputError);
  CheckpointFetcher bad_name(
      link, 9, json{{"checkpoints", {{{"checkpoint", "../x"}, {"files", json::array()}}}}},
      dir / "x");
  EXPECT_EQ(bad_name.result(), FetchResult::kFailed);
}

TEST(CheckpointUploader, OffersSendsWithinCreditAndForgetsOnceStored) {
  test::ScratchDir dir;
  FakeCoordinator c;
  CoordinatorLink link(c.endpoint(), "w1");
  const fs::path ckpt = dir / "checkpoints" / "step-00000006";
  fs::create_directories(ckpt);
  const std::string big = random_bytes(kChunkDataBytes + 10, 2);
  write_file_atomically(ckpt / "adapter_model.safetensors", big);
  write_file_atomically(ckpt / "state.json", "{\"step\": 6}");
  write_file_atomically(ckpt / "manifest.json", json{{"adapter_model.safetensors", sha256_hex(big)},
                                                     {"state.json", sha256_hex("{\"step\": 6}")}}
                                                    .dump());
  CheckpointUploader up(link, 7, dir / "upload");
  ASSERT_TRUE(up.add(ckpt));
  fs::remove_all(ckpt);  // the trainer prunes it: the staged hard links keep the bytes
  up.pump();
  auto offer = c.poll(2000);
  ASSERT_TRUE(offer && offer->type == MessageType::kOffer);
  EXPECT_EQ(offer->body["checkpoint"]["name"], "step-00000006");
  const std::string transfer = offer->body["transfer"];
  up.pump();
  EXPECT_FALSE(c.poll(100)) << "no CHUNK before any credit";
  std::map<std::string, std::string> got;
  auto all_sent = [&] {
    return got["adapter_model.safetensors"].size() == big.size() && !got["state.json"].empty() &&
           !got["manifest.json"].empty();
  };
  c.send(MessageType::kCredit, {{"transfer", transfer}, {"chunks", 1}});
  for (int granted = 1; granted < 10 && !all_sent(); ++granted) {
    if (auto m = link.receive(500)) {
      ASSERT_TRUE(up.handle(*m));
    }
    up.pump();
    int chunks = 0;
    while (auto m = c.poll(50)) {
      ASSERT_EQ(m->type, MessageType::kChunk);
      got[m->body["file"]] += m->data;
      ++chunks;
    }
    EXPECT_LE(chunks, 1) << "one CHUNK per credit";
    if (!all_sent()) c.send(MessageType::kCredit, {{"transfer", transfer}, {"chunks", 1}});
  }
  EXPECT_EQ(got["adapter_model.safetensors"], big);
  EXPECT_EQ(got["state.json"], "{\"step\": 6}");
  EXPECT_EQ(sha256_hex(got["manifest.json"]),
            sha256_hex(read_file(dir / "upload" / "step-00000006" / "manifest.json")));
  EXPECT_FALSE(up.idle());
  c.send(MessageType::kCredit, {{"transfer", transfer}, {"stored", true}, {"chunks", 0}});
  auto stored = link.receive(2000);
  ASSERT_TRUE(stored);
  EXPECT_TRUE(up.handle(*stored));
  EXPECT_TRUE(up.idle());
  EXPECT_EQ(up.stored(), 1);
  EXPECT_FALSE(fs::exists(dir / "upload" / "step-00000006"));
}

}  // namespace
}  // namespace tallrec
