// The named values a run spec's choice fields take, each list written once: the spec's parser
// and its JSON (common/run_spec.cc), the grid's allowed values (grid_axes()) and the trainer all
// read these tables. A value's name is what specs, grids and events spell; its position in
// `names` is the enumerator's value.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {

// Named defaults of a spec (RunSpec::recipe says what each sets).
enum class Recipe { kFinetuneRec, kInstruct7b };
// The order an epoch visits the records (jobs/train/data_order.h).
enum class DataOrder { kHf, kSeeded };
// Base weights' and activations' type.
enum class Dtype { kFloat32, kBFloat16, kFloat16 };
// How a prompt's answer logits become a score: TALLRec's softmax over the vocabulary then over
// [No, Yes], or the plain logit difference.
enum class Scoring { kTallrec, kLogitDiff };
// What a micro-batch's loss is divided by (jobs/train/step_plan.h).
enum class LossNormalization { kMicroBatchMean, kTokenMean };
// What a run trains: the LLM (LoRA on prompts, TALLRec) or one of Table 1's sequential
// recommenders on the same records' interactions (jobs/train/baselines/, docs/baselines.md).
enum class Method { kLlm, kGru4Rec, kCaser, kSasRec, kDros };

template <class E>
struct EnumNames;
template <>
struct EnumNames<Recipe> {
  static constexpr const char* field = "recipe";
  static constexpr std::array<const char*, 2> names{"finetune_rec", "instruct_7b"};
};
template <>
struct EnumNames<DataOrder> {
  static constexpr const char* field = "data_order";
  static constexpr std::array<const char*, 2> names{"hf", "seeded"};
};
template <>
struct EnumNames<Dtype> {
  static constexpr const char* field = "dtype";
  static constexpr std::array<const char*, 3> names{"float32", "bfloat16", "float16"};
};
template <>
struct EnumNames<Scoring> {
  static constexpr const char* field = "scoring";
  static constexpr std::array<const char*, 2> names{"tallrec", "logit_diff"};
};
template <>
struct EnumNames<LossNormalization> {
  static constexpr const char* field = "loss_normalization";
  static constexpr std::array<const char*, 2> names{"micro_batch_mean", "token_mean"};
};

template <>
struct EnumNames<Method> {
  static constexpr const char* field = "method";
  static constexpr std::array<const char*, 5> names{"llm", "gru4rec", "caser", "sasrec", "dros"};
};

template <class E>
const char* name_of(E value) {
  return EnumNames<E>::names[size_t(value)];
}

// The value named `name`, or none.
template <class E>
std::optional<E> enum_from_name(std::string_view name) {
  const auto& names = EnumNames<E>::names;
  for (size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return E(i);
  return std::nullopt;
}

// Every name, in the enumerators' order.
template <class E>
std::vector<std::string> enum_names() {
  return {EnumNames<E>::names.begin(), EnumNames<E>::names.end()};
}

// How Table 1 of the paper names a method (the results table's row labels): TALLRec for the LLM.
inline const char* display_name(Method method) {
  switch (method) {
    case Method::kLlm:
      return "TALLRec";
    case Method::kGru4Rec:
      return "GRU4Rec";
    case Method::kCaser:
      return "Caser";
    case Method::kSasRec:
      return "SASRec";
    case Method::kDros:
      return "DROS";
  }
  return "?";
}

// Every name as a refusal lists them: "float32, bfloat16 or float16".
template <class E>
std::string enum_names_text() {
  const auto& names = EnumNames<E>::names;
  std::string text;
  for (size_t i = 0; i < names.size(); ++i)
    text += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + std::string(names[i]);
  return text;
}

// The value named `name`; InputError otherwise: `ORIGIN: unknown dtype "x" (expected float32,
// bfloat16 or float16)`.
template <class E>
E parse_enum(std::string_view name, const std::string& origin) {
  if (auto value = enum_from_name<E>(name)) return *value;
  throw InputError(origin + ": unknown " + EnumNames<E>::field + " \"" + printable_utf8(name) +
                   "\" (expected " + enum_names_text<E>() + ")");
}

}  // namespace tallrec
