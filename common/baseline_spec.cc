#include "common/baseline_spec.h"

#include <cmath>
#include <functional>

#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {
namespace {

// One row per field: its name, how to write it and how to read it (as common/run_spec.cc does
// for RunSpec), so that the field list, the JSON and the parser cannot disagree.
struct Field {
  const char* name;
  std::function<nlohmann::json(const BaselineSpec&)> write;
  std::function<bool(const nlohmann::json&, BaselineSpec&)> read;  // false: wrong type or range
  const char* must_be;
};

// A number in [least, most]; the bounds keep every size within what a model of this kind can be
// (and the step arithmetic far from overflow).
template <class T>
Field number(const char* name, T BaselineSpec::*member, double least, double most,
             const char* must_be) {
  return {name, [member](const BaselineSpec& s) { return nlohmann::json(s.*member); },
          [member, least, most](const nlohmann::json& j, BaselineSpec& s) {
            T value{};
            if (!get_exact(j, value) || !(double(value) >= least) || !(double(value) <= most))
              return false;
            s.*member = value;
            return true;
          },
          must_be};
}

// A finite number above 0.
Field positive(const char* name, double BaselineSpec::*member) {
  return {name, [member](const BaselineSpec& s) { return nlohmann::json(s.*member); },
          [member](const nlohmann::json& j, BaselineSpec& s) {
            double value = 0;
            if (!get_exact(j, value) || !(value > 0) || !std::isfinite(value)) return false;
            s.*member = value;
            return true;
          },
          "a positive number"};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      {"method", [](const BaselineSpec& s) { return nlohmann::json(name_of(s.method)); },
       [](const nlohmann::json& j, BaselineSpec& s) {
         if (!j.is_string()) return false;
         auto m = enum_from_name<Method>(j.get<std::string>());
         if (!m || *m == Method::kLlm) return false;
         s.method = *m;
         return true;
       },
       "gru4rec, caser, sasrec or dros"},
      {"inputs", [](const BaselineSpec& s) { return nlohmann::json(s.inputs); },
       [](const nlohmann::json& j, BaselineSpec& s) { return get_exact(j, s.inputs); }, "a path"},
      number("seed", &BaselineSpec::seed, 0, 1.8446744073709552e19, "a non-negative integer"),
      number("hidden_size", &BaselineSpec::hidden_size, 1, 4096, "an integer from 1 to 4096"),
      positive("lr", &BaselineSpec::lr),
      number("weight_decay", &BaselineSpec::weight_decay, 0, 1, "a number from 0 to 1"),
      {"dropout", [](const BaselineSpec& s) { return nlohmann::json(s.dropout); },
       [](const nlohmann::json& j, BaselineSpec& s) {
         return get_exact(j, s.dropout) && s.dropout >= 0 && s.dropout < 1;
       },
       "a number in [0, 1)"},
      number("batch_size", &BaselineSpec::batch_size, 1, 1 << 20, "an integer from 1 to 1048576"),
      number("epochs", &BaselineSpec::epochs, 1, 1e6, "an integer from 1 to 1000000"),
      number("early_stopping_patience", &BaselineSpec::early_stopping_patience, 1, 1e6,
             "an integer from 1 to 1000000"),
      number("eval_batch_size", &BaselineSpec::eval_batch_size, 1, 1 << 20,
             "an integer from 1 to 1048576"),
      number("sasrec_layers", &BaselineSpec::sasrec_layers, 1, 64, "an integer from 1 to 64"),
      number("sasrec_heads", &BaselineSpec::sasrec_heads, 1, 64, "an integer from 1 to 64"),
      number("sasrec_inner_size", &BaselineSpec::sasrec_inner_size, 1, 65536,
             "an integer from 1 to 65536"),
      number("gru4rec_layers", &BaselineSpec::gru4rec_layers, 1, 64, "an integer from 1 to 64"),
      number("caser_vertical_filters", &BaselineSpec::caser_vertical_filters, 1, 1024,
             "an integer from 1 to 1024"),
      number("caser_horizontal_filters", &BaselineSpec::caser_horizontal_filters, 1, 1024,
             "an integer from 1 to 1024"),
      number("dros_alpha", &BaselineSpec::dros_alpha, 0, 1e6, "a number from 0 to 1000000"),
      positive("dros_beta", &BaselineSpec::dros_beta),
      number("threads", &BaselineSpec::threads, 0, 1024, "an integer from 0 to 1024"),
  };
  return table;
}

}  // namespace

Method spec_method(const nlohmann::json& spec, const std::string& origin) {
  if (!spec.is_object() || !spec.contains("method")) return Method::kLlm;
  const auto& m = spec["method"];
  if (!m.is_string()) throw InputError(origin + ": \"method\" must be a string");
  return parse_enum<Method>(m.get<std::string>(), origin);
}

const std::vector<std::string>& baseline_spec_fields() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& f : fields()) out.push_back(f.name);
    return out;
  }();
  return names;
}

nlohmann::json baseline_spec_json(const BaselineSpec& s) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& f : fields()) out[f.name] = f.write(s);
  return out;
}

BaselineSpec parse_baseline_spec(const nlohmann::json& spec, const std::string& origin) {
  if (!spec.is_object()) throw InputError(origin + ": a baseline spec must be a JSON object");
  BaselineSpec s;
  for (const auto& [key, value] : spec.items()) {
    const Field* field = nullptr;
    for (const auto& f : fields())
      if (key == f.name) field = &f;
    if (!field)
      throw InputError(origin + ": unknown field \"" + printable_utf8(key) +
                       "\" for a baseline spec (fields: see schemas/baseline_spec.schema.json)");
    if (!field->read(value, s))
      throw InputError(origin + ": \"" + key + "\": " + dump_json(value) + " must be " +
                       field->must_be);
  }
  if (!spec.contains("method")) throw InputError(origin + ": no \"method\"");
  if (s.inputs.empty()) throw InputError(origin + ": no \"inputs\"");
  if ((s.method == Method::kSasRec || s.method == Method::kDros) &&
      s.hidden_size % s.sasrec_heads != 0)
    throw InputError(origin + ": \"hidden_size\" " + std::to_string(s.hidden_size) +
                     " is not a multiple of \"sasrec_heads\" " + std::to_string(s.sasrec_heads));
  return s;
}

BaselineSpec baseline_spec_of_run(const nlohmann::json& grid_run, const std::string& inputs) {
  nlohmann::json spec = grid_run.value("baseline", nlohmann::json::object());
  if (!spec.is_object()) throw InputError("grid run: \"baseline\" must be an object");
  for (const char* key : {"method", "seed"})
    if (grid_run.contains(key)) spec[key] = grid_run[key];
  spec["inputs"] = inputs;
  return parse_baseline_spec(spec, "grid run");
}

}  // namespace tallrec
