// The worker's checkpoint transfers (worker/checkpoint_sync.h) against a coordinator on a real
// ROUTER socket on 127.0.0.1: the fetch and the upload are pumped objects, so the test drives
// them as the agent's loop does (pump, receive, handle). Fetches are answered by the
// coordinator's own CheckpointTransfers over a real store, from a checkpoint the worker's
// uploader stored.
#include "worker/checkpoint_sync.h"

#include <chrono>
#include <fstream>
#include <functional>
#include <random>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/protocol.h"
#include "common/sha256.h"
#include "coordinator/checkpoint_transfers.h"
#include "coordinator/grid.h"
#include "coordinator/store.h"
#include "grid_text.h"
#include "test_paths.h"
#include "trp_peer.h"

namespace tallrec {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(g());
  return s;
}

// A checkpoint folder as tallrec-train writes it: its files and a manifest of their SHA-256s.
std::map<std::string, std::string> write_checkpoint(const fs::path& dir,
                                                    std::map<std::string, std::string> files) {
  fs::create_directories(dir);
  json manifest = json::object();
  for (const auto& [name, bytes] : files) {
    write_file_atomically(dir / name, bytes);
    manifest[name] = sha256_hex(bytes);
  }
  write_file_atomically(dir / "manifest.json", manifest.dump());
  files["manifest.json"] = manifest.dump();
  return files;
}

// The coordinator's end for real: a store with a run leased to worker "w1" and the run's
// checkpoint transfers (coordinator/checkpoint_transfers.h), answering what reaches the test's
// ROUTER as the broker would. `damage` may change the data of a CHUNK it sends (k: which FETCH).
struct Coordinator {
  explicit Coordinator(const fs::path& dir)
      : store(dir / "c.db"),
        transfers(store, dir / "artifacts", [this](const std::string&, const Message& m) {
          std::string data = m.data;
          if (m.type == MessageType::kChunk) data = damage(fetches, m.body, data);
          peer.send(m.type, m.body, data);
        }) {
    store.queue.submit(parse_grid(test::grid_text("g", "[16]"), "g"));
    store.workers.announce("w1", "h", json::array(), 1, "test", unix_time());
    lease = *store.queue.lease_next("w1", unix_time());
  }
  // Hands one message from the worker to the transfers, then lets them send.
  void take(const Message& m) {
    const double now = unix_time();
    if (m.type == MessageType::kOffer) transfers.offer(peer.peer(), m.body, now);
    if (m.type == MessageType::kChunk) transfers.chunk(peer.peer(), m, now);
    if (m.type == MessageType::kCredit) transfers.credit(peer.peer(), m.body, now);
    if (m.type == MessageType::kFetch) {
      ++fetches;
      transfer_ids.push_back(m.body["transfer"]);
      transfers.fetch(peer.peer(), m.body, now);
    }
    transfers.after_commit();
    transfers.pump(now);
  }
  // LEASE's `resume` for the leased run.
  json resume() { return transfers.resume_point(lease.run_id); }

  test::TrpPeer peer = test::TrpPeer::coordinator();
  Store store;
  CheckpointTransfers transfers;
  Lease lease;
  std::function<std::string(int, const json&, const std::string&)> damage =
      [](int, const json&, const std::string& data) { return data; };
  int fetches = 0;
  std::vector<std::string> transfer_ids;
};

// Stores `files` as the leased run's checkpoint step-00000004, uploaded by the worker's own
// CheckpointUploader; returns them with their manifest.
std::map<std::string, std::string> store_checkpoint(Coordinator& c, CoordinatorLink& link,
                                                    const fs::path& dir) {
  const auto files =
      write_checkpoint(dir / "trainer" / "step-00000004",
                       {{"adapter_model.safetensors", random_bytes(2 * kChunkDataBytes + 1234, 1)},
                        {"state.json", "{\"step\": 4}"}});
  CheckpointUploader up(link, c.lease.attempt_id, dir / "upload");
  EXPECT_TRUE(up.add(dir / "trainer" / "step-00000004"));
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!up.idle() && std::chrono::steady_clock::now() < end) {
    up.pump();
    while (auto m = c.peer.poll(5)) c.take(*m);
    while (auto m = link.receive(5)) up.handle(*m);
  }
  EXPECT_EQ(up.stored(), 1);
  return files;
}

// Pumps the fetcher and the coordinator until the fetch has a result (10 s at most).
std::optional<FetchResult> run_fetch(CheckpointFetcher& fetcher, CoordinatorLink& link,
                                     Coordinator& c) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!fetcher.result() && std::chrono::steady_clock::now() < end) {
    fetcher.pump();
    while (auto m = c.peer.poll(5)) c.take(*m);
    while (auto m = link.receive(5)) EXPECT_TRUE(fetcher.handle(*m)) << message_type_name(m->type);
  }
  return fetcher.result();
}

// A run with a checkpoint stored by the coordinator, and a worker fetching it to resume.
class CheckpointFetch : public ::testing::Test {
 protected:
  std::optional<FetchResult> run() {
    CheckpointFetcher fetcher(link, c.lease.attempt_id, c.resume(), dir / "checkpoints");
    return run_fetch(fetcher, link, c);
  }
  test::ScratchDir dir;
  Coordinator c{dir.path()};
  CoordinatorLink link{c.peer.endpoint(), "w1"};
  const std::map<std::string, std::string> stored = store_checkpoint(c, link, dir.path());
};

TEST_F(CheckpointFetch, FetchesInChunksWithinTheCreditAndChecksEveryFile) {
  ASSERT_EQ(run(), FetchResult::kFetched);
  EXPECT_EQ(c.fetches, 1);
  for (const auto& [name, bytes] : stored)
    EXPECT_EQ(read_file(dir / "checkpoints" / "step-00000004" / name), bytes) << name;
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / ".fetch-step-00000004"));
}

TEST_F(CheckpointFetch, ADamagedCopyIsFetchedAgainUnderANewTransfer) {
  c.damage = [](int fetch, const json& chunk, const std::string& s) {
    const bool first = fetch == 1 && chunk["offset"] == 0 && s.size() > 100;
    return first ? s.substr(0, 100) + char(s[100] ^ 1) + s.substr(101) : s;  // one bit flipped
  };
  ASSERT_EQ(run(), FetchResult::kFetched);
  EXPECT_EQ(c.fetches, 2);
  EXPECT_NE(c.transfer_ids[0], c.transfer_ids[1]);
  EXPECT_EQ(read_file(dir / "checkpoints" / "step-00000004" / "adapter_model.safetensors"),
            stored.at("adapter_model.safetensors"));
}

TEST_F(CheckpointFetch, GivesUpAfterThreeFailedTriesAndLeavesNoHalfCheckpoint) {
  c.damage = [](int, const json& chunk, const std::string& s) {
    return chunk["last"] == true ? s + "!" : s;  // sizes never match
  };
  ASSERT_EQ(run(), FetchResult::kFailed);
  EXPECT_EQ(c.fetches, 3);
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / "step-00000004"));
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / ".fetch-step-00000004"))
      << "the last try's damaged files were left behind";
}

TEST_F(CheckpointFetch, AnErrorAnswerIsRetriedAndNothingToResumeIsDoneAtOnce) {
  CheckpointFetcher fetcher(link, c.lease.attempt_id, c.resume(), dir / "checkpoints");
  fetcher.pump();  // FETCH #1, answered with an ERROR instead of chunks
  auto m = c.peer.poll(2000);
  ASSERT_TRUE(m && m->type == MessageType::kFetch);
  c.peer.send(MessageType::kError,
              {{"transfer", m->body["transfer"]}, {"code", "not-found"}, {"message", "gone"}});
  auto error = link.receive(2000);
  ASSERT_TRUE(error);
  EXPECT_TRUE(fetcher.handle(*error));
  EXPECT_FALSE(fetcher.result());
  ASSERT_EQ(run_fetch(fetcher, link, c), FetchResult::kFetched);
  EXPECT_EQ(c.fetches, 1);  // the transfers saw only the second FETCH

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
  test::TrpPeer c = test::TrpPeer::coordinator();
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
