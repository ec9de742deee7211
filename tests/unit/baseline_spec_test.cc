#include "common/baseline_spec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "common/error.h"
#include "input_error_matcher.h"
#include "test_paths.h"

namespace tallrec {
namespace {

nlohmann::json schema() {
  std::ifstream in(test::source_dir() / "schemas" / "baseline_spec.schema.json");
  return nlohmann::json::parse(in);
}

TEST(BaselineSpec, FieldsDefaultsAndMethodsAreTheSchemas) {
  const nlohmann::json properties = schema().at("properties");
  std::set<std::string> documented;
  for (const auto& [name, doc] : properties.items()) documented.insert(name);
  const auto& fields = baseline_spec_fields();
  EXPECT_EQ(documented, std::set<std::string>(fields.begin(), fields.end()));
  const nlohmann::json defaults = baseline_spec_json(BaselineSpec{});
  for (const auto& [name, doc] : properties.items()) {
    if (doc.contains("default")) {
      EXPECT_EQ(doc["default"].get<double>(), defaults.at(name).get<double>()) << name;
    }
  }
  std::vector<std::string> baselines = enum_names<Method>();
  baselines.erase(baselines.begin());  // "llm" is a run spec
  EXPECT_EQ(properties.at("method").at("enum").get<std::vector<std::string>>(), baselines);
}

TEST(BaselineSpec, ParsesAndRoundTrips) {
  const BaselineSpec s = parse_baseline_spec(
      {{"method", "caser"}, {"inputs", "in.json"}, {"seed", 4}, {"lr", 0.01}}, "spec.json");
  EXPECT_EQ(s.method, Method::kCaser);
  EXPECT_EQ(s.seed, 4u);
  EXPECT_EQ(s.lr, 0.01);
  EXPECT_EQ(s.hidden_size, 64);
  EXPECT_EQ(baseline_spec_json(parse_baseline_spec(baseline_spec_json(s), "again")),
            baseline_spec_json(s));
}

void expect_refused(const nlohmann::json& spec, const std::string& needle) {
  test::expect_input_error([&] { parse_baseline_spec(spec, "spec.json"); }, needle);
}

TEST(BaselineSpec, RefusalsNameTheField) {
  const nlohmann::json ok = {{"method", "sasrec"}, {"inputs", "in.json"}};
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json s = ok;
    s[key] = std::move(value);
    return s;
  };
  expect_refused(with("method", "llm"),
                 "spec.json: \"method\": \"llm\" must be gru4rec, caser, sasrec or dros");
  expect_refused(with("method", "bert4rec"), "\"method\": \"bert4rec\"");
  expect_refused(with("dropout", 1.0), "\"dropout\": 1.0 must be a number in [0, 1)");
  expect_refused(with("hidden_size", 0), "\"hidden_size\": 0 must be an integer from 1 to 4096");
  expect_refused(with("epochs", 2.5), "\"epochs\": 2.5 must be an integer from 1 to 1000000");
  expect_refused(with("batch_size", 9223372036854775807LL),
                 "\"batch_size\": 9223372036854775807 must be an integer from 1 to 1048576");
  expect_refused(with("lora", 1), "unknown field \"lora\" for a baseline spec");
  expect_refused(with("hidden_size", 65),
                 "\"hidden_size\" 65 is not a multiple of \"sasrec_heads\"");
  expect_refused({{"method", "sasrec"}}, "spec.json: no \"inputs\"");
}

TEST(BaselineSpec, AMethodlessSpecIsTheLlms) {
  EXPECT_EQ(spec_method({{"base_model", "m"}}, "s"), Method::kLlm);
  EXPECT_EQ(spec_method({{"method", "gru4rec"}}, "s"), Method::kGru4Rec);
  EXPECT_THROW(spec_method({{"method", 3}}, "s"), InputError);
}

}  // namespace
}  // namespace tallrec
