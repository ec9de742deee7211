// The folders are the architecture (docs/dev/design.md, "Parts and who may depend on whom"):
// common, then jobs, then worker and coordinator (side by side, neither including the other), then
// cli. No file includes a layer above its own; jobs/ includes no network library; the coordinator,
// the worker and cli include no libtorch header. Checked on every source file, so a new include
// that points up fails here.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>

#include "test_paths.h"

namespace tallrec {
namespace {
namespace fs = std::filesystem;

// The layer of a path under the repository ("jobs/train/llama.cc" -> jobs), or "" for others.
std::string layer_of(const std::string& path) {
  for (const char* l : {"common", "jobs", "worker", "coordinator", "cli"})
    if (path.rfind(std::string(l) + "/", 0) == 0) return l;
  return "";
}

TEST(Layering, NoIncludePointsUpAndNoLayerTakesWhatItMustNot) {
  const std::map<std::string, int> rank = {
      {"common", 0}, {"jobs", 1}, {"worker", 2}, {"coordinator", 2}, {"cli", 3}};
  const std::regex include(R"(^\s*#\s*include\s*[<"]([^>"]+)[>"])");
  const std::regex network(R"(^(zmq|zmq_addon|curl/|boost/asio|boost/beast|sqlite3))");
  const std::regex torch(R"(^(ATen/|torch/|c10/))");
  int files = 0;
  for (const char* top : {"common", "jobs", "worker", "coordinator", "cli"}) {
    for (const auto& e : fs::recursive_directory_iterator(test::source_dir() / top)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".cc" && ext != ".h") continue;
      const std::string rel = fs::relative(e.path(), test::source_dir()).string();
      const std::string layer = layer_of(rel);
      ++files;
      std::ifstream in(e.path());
      std::string line;
      for (int n = 1; std::getline(in, line); ++n) {
        std::smatch m;
        if (!std::regex_search(line, m, include)) continue;
        const std::string target = m[1];
        const std::string where = rel + ":" + std::to_string(n) + " includes " + target;
        const std::string to = layer_of(target);
        if (!to.empty()) {
          EXPECT_LE(rank.at(to), rank.at(layer)) << where << ": a layer above its own";
          if (rank.at(to) == rank.at(layer)) {
            EXPECT_EQ(to, layer) << where << ": a sibling layer";
          }
        }
        const bool below_worker = layer == "jobs" || layer == "common";
        EXPECT_FALSE(below_worker && std::regex_search(target, network))
            << where << ": no network below worker";
        const bool outside_train = rel.rfind("jobs/train/", 0) != 0;
        EXPECT_FALSE(outside_train && std::regex_search(target, torch))
            << where << ": libtorch only in jobs/train";
      }
    }
  }
  EXPECT_GT(files, 100);
}

}  // namespace
}  // namespace tallrec
