// The grid the coordinator's tests submit, written once for grid_test and store_test.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tallrec::test {

// A grid over two domains and two seeds; `extra` adds fields (a JSON object's members).
inline std::string grid_text(const std::string& name, const std::string& samples,
                             const std::string& extra = "") {
  nlohmann::json g = {{"name", name},
                      {"base_model", "/m"},
                      {"tokenizer", "/t.model"},
                      {"datasets",
                       {{"movie", {{"train", "mt"}, {"valid", "mv"}, {"test", "ms"}}},
                        {"book", {{"train", "bt"}, {"valid", "bv"}, {"test", "bs"}}}}},
                      {"domains", {"movie", "book"}},
                      {"samples", nlohmann::json::parse(samples)},
                      {"seeds", {0, 1}}};
  if (!extra.empty()) g.update(nlohmann::json::parse("{" + extra.substr(1) + "}"));
  return g.dump();
}

}  // namespace tallrec::test
