// The HTTP API's request handling (coordinator/http_api.h) on a real SQLite store: any method,
// target and body. handle() must never throw, and every JSON answer must be valid UTF-8 JSON.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "coordinator/http_api.h"
#include "coordinator/store.h"

namespace {

struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<tallrec::Store> store;
  std::unique_ptr<tallrec::HttpApi> api;
  Fixture() {
    dir =
        std::filesystem::temp_directory_path() / ("tallrec-fuzz-http-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir / "web");
    store = std::make_unique<tallrec::Store>(dir / "store.db");
    tallrec::ApiOptions o;
    o.token = std::string(64, 'a');
    o.artifacts = dir / "artifacts";
    o.web_root = dir / "web";
    api = std::make_unique<tallrec::HttpApi>(*store, o, nullptr);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

}  // namespace

// Input: METHOD \n TARGET \n AUTHORIZED(0/1) \n BODY
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t a = in.find('\n'), b = a == std::string::npos ? a : in.find('\n', a + 1),
               c = b == std::string::npos ? b : in.find('\n', b + 1);
  if (c == std::string::npos) return 0;
  tallrec::HttpRequest r{
      in.substr(0, a), in.substr(a + 1, b - a - 1), in.substr(c + 1),
      in.substr(b + 1, c - b - 1) == "1" ? "Bearer " + std::string(64, 'a') : ""};
  const tallrec::HttpResponse response = f.api->handle(r);
  if (response.content_type == "application/json" && response.file.empty() &&
      !response.body.empty())
    (void)nlohmann::json::parse(response.body);  // throws (a finding) unless valid JSON and UTF-8
  return 0;
}
