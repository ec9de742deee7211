// One vocabulary: the field lists the C++ parsers accept equal what the JSON schemas that
// cross the boundaries document (grid, TRP/1 messages), so the two cannot drift apart.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/protocol.h"
#include "common/run_spec.h"
#include "common/train_events.h"
#include "coordinator/grid.h"
#include "coordinator/store.h"
#include "jobs/data/tokenize_records.h"
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

// A grid's `baselines` takes the baseline spec's fields but those the run or the worker sets,
// with the same types and bounds, in both documents of a grid (the coordinator checks them with
// the baseline spec's own parser).
TEST(Schemas, GridBaselinesAreTheBaselineSpecsFields) {
  nlohmann::json want = schema("baseline_spec.schema.json").at("properties");
  for (const char* key : {"method", "inputs", "seed", "threads"}) want.erase(key);
  const nlohmann::json grid = schema("grid.schema.json").at("properties").at("baselines");
  EXPECT_EQ(grid.at("properties"), want);
  EXPECT_EQ(grid.at("additionalProperties"), false);
  EXPECT_EQ(schema("openapi.json")
                .at("components")
                .at("schemas")
                .at("Grid")
                .at("properties")
                .at("baselines"),
            grid);
}

// The grid's methods are Method's names (common/spec_enums.h), in both documents of a grid.
TEST(Schemas, GridMethodsAreTheMethodEnumsNames) {
  const nlohmann::json want = enum_names<Method>();
  const nlohmann::json grid = schema("grid.schema.json").at("properties").at("methods");
  EXPECT_EQ(grid.at("items").at("enum"), want);
  EXPECT_EQ(grid.at("default"), nlohmann::json::array({name_of(Method::kLlm)}));
  EXPECT_EQ(grid.at("uniqueItems"), true);
  const nlohmann::json api = schema("openapi.json")
                                 .at("components")
                                 .at("schemas")
                                 .at("Grid")
                                 .at("properties")
                                 .at("methods");
  EXPECT_EQ(api.at("items").at("enum"), want);
  EXPECT_EQ(api.at("uniqueItems"), true);
}

TEST(Schemas, RunSpecFieldsEqualTheSchema) {
  const auto& fields = run_spec_fields();
  EXPECT_EQ(keys(schema("run_spec.schema.json").at("properties")),
            std::set<std::string>(fields.begin(), fields.end()));
  EXPECT_EQ(keys(run_spec_json(RunSpec{})), std::set<std::string>(fields.begin(), fields.end()));
}

// Numbers compare by value: the schema writes 16, RunSpec holds 16.0.
bool same_value(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

// Defaults are written once, in RunSpec: the schema documents the same, and a grid that leaves
// an axis out gets RunSpec's value for it.
TEST(Schemas, RunSpecDefaultsEqualTheSchemasAndTheGridsDefaults) {
  const nlohmann::json defaults = run_spec_json(RunSpec{});
  const nlohmann::json properties = schema("run_spec.schema.json").at("properties");
  for (const auto& [field, documented] : properties.items()) {
    if (documented.contains("default")) {
      EXPECT_TRUE(same_value(documented["default"], defaults.at(field))) << field;
    }
    if (documented.contains("properties"))
      for (const auto& [sub, doc] : documented["properties"].items())
        if (doc.contains("default")) {
          EXPECT_TRUE(same_value(doc["default"], defaults.at(field).at(sub)))
              << field << "." << sub;
        }
  }
  for (const GridAxis& axis : grid_axes()) {
    if (!axis.always) continue;
    const nlohmann::json want = axis.spec_field.empty()
                                    ? nlohmann::json(TokenizeOptions{}.cutoff_len)
                                    : defaults.at(nlohmann::json::json_pointer(axis.spec_field));
    EXPECT_TRUE(same_value(axis.default_value, want)) << axis.name;
  }
  // And every axis the grid schema lists is one the worker can translate.
  const nlohmann::json hyper =
      schema("grid.schema.json").at("properties").at("hyper").at("properties");
  for (const GridAxis& axis : grid_axes()) EXPECT_TRUE(hyper.contains(axis.name)) << axis.name;
}

// The run keys of grids stored before the defaults moved into RunSpec stay the same (a
// resubmitted grid must add nothing): a default grid's run spec, byte for byte as it was.
TEST(Schemas, DefaultGridRunSpecIsUnchanged) {
  const nlohmann::json g = {
      {"name", "k"},
      {"base_model", "/m"},
      {"tokenizer", "/t"},
      {"datasets", {{"movie", {{"train", "/a"}, {"valid", "/b"}, {"test", "/c"}}}}},
      {"domains", {"movie"}},
      {"samples", {16}},
      {"seeds", {0}}};
  EXPECT_EQ(parse_grid(g.dump(), "k").runs.at(0).spec.dump(),
            R"({"base_model":"/m","batch_size":128,"cutoff_len":512,"domain":"movie","epochs":200,)"
            R"("lora_alpha":16,"lora_dropout":0.05,"lora_r":8,"lr":0.0001,"max_steps":-1,)"
            R"("micro_batch_size":32,"sample":16,"seed":0,"target_modules":["q_proj","v_proj"],)"
            R"("tests":{"movie":"/c"},"tokenizer":"/t","train":"/a","valid":"/b"})");
}

// Run states are spelled once (coordinator/run_state.h): the store's CHECK constraint, the HTTP
// API's schema and the dashboard list the same names.
TEST(Schemas, RunStatesAreTheSameEverywhere) {
  std::vector<std::string> names;
  for (RunState s : kAllRunStates) names.push_back(run_state_name(s));
  auto quoted_list = [](const std::string& text, const std::string& quote) {
    std::vector<std::string> out;
    for (size_t at = text.find(quote); at != std::string::npos; at = text.find(quote, at)) {
      const size_t end = text.find(quote, at + 1);
      out.push_back(text.substr(at + 1, end - at - 1));
      at = end + 1;
    }
    return out;
  };
  std::ifstream app_js(std::string(TALLREC_SOURCE_DIR) + "/web-ui-static/app.js");
  std::string line;
  bool found = false;
  while (std::getline(app_js, line))
    if (line.rfind("const STATES = [", 0) == 0) {
      found = true;
      EXPECT_EQ(quoted_list(line.substr(0, line.find(']')), "\""), names) << line;
    }
  EXPECT_TRUE(found) << "app.js has no `const STATES = [...]` line";
  test::ScratchDir dir;
  Store store(dir / "s.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "s.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'runs'", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  const std::string table = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(db);
  const size_t check = table.find("state IN (");
  ASSERT_NE(check, std::string::npos);
  EXPECT_EQ(quoted_list(table.substr(check, table.find(')', check) - check), "'"), names);
  int enums = 0;  // every `enum` of the OpenAPI document that lists run states
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
    if (j.is_object()) {
      if (j.contains("enum") && j["enum"].is_array() && j["enum"].size() > 0 &&
          j["enum"][0] == "queued") {
        ++enums;
        EXPECT_EQ(j["enum"].get<std::vector<std::string>>(), names);
      }
      for (const auto& [k, v] : j.items()) walk(v);
    } else if (j.is_array()) {
      for (const auto& v : j) walk(v);
    }
  };
  walk(schema("openapi.json"));
  EXPECT_GE(enums, 1);
}

// What the queue reads of the trainer's events (coordinator/train_events.h) is in the schema: the
// event types, and each metric a required field of the progress or the eval event.
TEST(Schemas, TrainEventNamesTheQueueReadsAreTheSchemas) {
  const nlohmann::json s = schema("train_event.schema.json");
  const nlohmann::json& types = s.at("properties").at("type").at("enum");
  for (const char* type : {kStartedEvent, kProgressEvent, kEvalEvent, kCheckpointEvent,
                           kFinishedEvent, kFailedEvent, kPreemptedEvent})
    EXPECT_NE(std::find(types.begin(), types.end(), type), types.end()) << type;
  std::set<std::string> measured;
  for (const auto& event : s.at("oneOf")) {
    const std::string type = event.at("properties").at("type").at("const");
    if (type == kProgressEvent || type == kEvalEvent)
      for (const auto& field : event.at("required")) measured.insert(field.get<std::string>());
  }
  for (const char* metric : kEventMetrics) EXPECT_TRUE(measured.count(metric)) << metric;
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
