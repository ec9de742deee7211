// The grids the unit tests submit, written once.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tallrec::test {

// The one grid the unit tests build on: one movie domain, sample 16, seeds 0 and 1 (two runs);
// `fields` replace or add members (a JSON object).
inline nlohmann::json movie_grid(const nlohmann::json& fields = nlohmann::json::object()) {
  nlohmann::json g = {{"name", "g"},
                      {"base_model", "/m"},
                      {"tokenizer", "/t"},
                      {"datasets", {{"movie", {{"train", "a"}, {"valid", "b"}, {"test", "c"}}}}},
                      {"domains", {"movie"}},
                      {"samples", {16}},
                      {"seeds", {0, 1}}};
  g.update(fields);
  return g;
}

// The same over two domains (movie and book), as text; `samples` is a JSON array and `extra`
// adds members (", \"key\": value, ...").
inline std::string grid_text(const std::string& name, const std::string& samples,
                             const std::string& extra = "") {
  nlohmann::json g = movie_grid({{"name", name},
                                 {"tokenizer", "/t.model"},
                                 {"datasets",
                                  {{"movie", {{"train", "mt"}, {"valid", "mv"}, {"test", "ms"}}},
                                   {"book", {{"train", "bt"}, {"valid", "bv"}, {"test", "bs"}}}}},
                                 {"domains", {"movie", "book"}},
                                 {"samples", nlohmann::json::parse(samples)}});
  if (!extra.empty()) g.update(nlohmann::json::parse("{" + extra.substr(1) + "}"));
  return g.dump();
}

}  // namespace tallrec::test
