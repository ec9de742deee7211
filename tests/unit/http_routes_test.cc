// The HTTP API's route table (coordinator/http_api.h) is the one list of operations: it equals
// schemas/openapi.json's, and dispatch, 404, 405 and Allow follow from it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "coordinator/http_api.h"
#include "coordinator/store.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(HttpRoutes, AreTheOperationsOfTheOpenApiDocument) {
  std::ifstream in(test::source_dir() / "schemas" / "openapi.json");
  std::stringstream text;
  text << in.rdbuf();
  const auto doc = nlohmann::json::parse(text.str());
  std::set<std::string> documented, routed;
  for (const auto& [path, item] : doc.at("paths").items()) {
    if (path.rfind("/api/", 0) != 0) continue;  // /metrics and the dashboard: not API routes
    for (const auto& [method, operation] : item.items()) {
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      documented.insert(upper + " " + path);
    }
  }
  for (const HttpRoute& r : http_routes()) routed.insert(std::string(r.method) + " " + r.pattern);
  EXPECT_EQ(routed, documented);
}

TEST(HttpRoutes, DispatchNotFoundAndWrongMethodFollowFromTheTable) {
  test::ScratchDir dir;
  Store store((dir / "s.db").string());
  HttpApi api(
      store,
      ApiOptions{"token", false, dir / "artifacts", dir.path(), dir.path(), dir / "openapi.json"},
      nullptr);
  auto call = [&](const std::string& method, const std::string& target) {
    return api.handle({method, target, "", "Bearer token"});
  };
  EXPECT_EQ(call("GET", "/api/sweeps").status, 200);
  EXPECT_EQ(call("HEAD", "/api/workers").status, 200);  // a GET answers HEAD
  EXPECT_EQ(call("GET", "/api/runs/7").status, 404);    // a route, no such run
  EXPECT_EQ(call("GET", "/api/runs/x").status, 400);
  EXPECT_EQ(call("GET", "/api/nothing").status, 404);
  EXPECT_EQ(call("GET", "/api/runs/7/nothing").status, 404);
  const HttpResponse wrong = call("DELETE", "/api/sweeps");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(allowed_methods("/api/sweeps"), "GET, HEAD, POST");
  EXPECT_EQ(allowed_methods("/api/runs/7/cancel"), "POST");
  EXPECT_EQ(allowed_methods("/api/events"), "GET");  // the stream: no HEAD
  EXPECT_EQ(allowed_methods("/api/runs/7/checkpoints/best/adapter_model.safetensors"), "GET, HEAD");
  EXPECT_EQ(allowed_methods("/api/nothing"), "");
  const HttpResponse refused = call("POST", "/api/runs/7/cancel");
  EXPECT_EQ(refused.status, 404);
}

}  // namespace
}  // namespace tallrec
