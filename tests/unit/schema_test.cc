// One vocabulary: the field lists the C++ parsers accept equal what the JSON schemas that
// cross the boundaries document (grid, TRP/1 messages), so the two cannot drift apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/protocol.h"
#include "coordinator/grid.h"
#include "test_paths.h"

namespace tallrec {
namespace {

nlohmann::json schema(const std::string& name) {
  std::ifstream in(std::string(TALLREC_SOURCE_DIR) + "/schemas/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

std::set<std::string> keys(const nlohmann::json& object) {
  std::set<std::string> out;
  for (auto& [k, v] : object.items()) out.insert(k);
  return out;
}

TEST(Schemas, GridFieldsAndHyperAxesEqualGridSchema) {
  const nlohmann::json s = schema("grid.schema.json");
  const auto fields = grid_document_fields();
  EXPECT_EQ(keys(s.at("properties")), std::set<std::string>(fields.begin(), fields.end()));
  const auto axes = grid_hyper_axes();
  EXPECT_EQ(keys(s.at("properties").at("hyper").at("properties")),
            std::set<std::string>(axes.begin(), axes.end()));
}

TEST(Schemas, MessageRequiredFieldsEqualTrp1Schema) {
  const nlohmann::json defs = schema("trp1.schema.json").at("$defs");
  for (const auto& [type, fields] : message_required_fields()) {
    ASSERT_TRUE(defs.contains(type)) << type << " is not in trp1.schema.json";
    const auto required = defs.at(type).value("required", std::vector<std::string>{});
    EXPECT_EQ(std::set<std::string>(required.begin(), required.end()),
              std::set<std::string>(fields.begin(), fields.end()))
        << type;
  }
}

}  // namespace
}  // namespace tallrec
