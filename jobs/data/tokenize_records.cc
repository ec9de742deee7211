#include "jobs/data/tokenize_records.h"

#include <algorithm>
#include <numeric>
#include <tuple>

#include "common/error.h"
#include "common/json_text.h"
#include "common/sha256.h"
#include "jobs/data/few_shot.h"

namespace tallrec {

AnswerIds lookup_answer_ids(const Tokenizer& tokenizer) {
  const std::string prefix = "### Response:\n";
  const auto prefix_ids = tokenizer.encode(prefix);
  auto answer_id = [&](const std::string& word) {
    auto ids = tokenizer.encode(prefix + word + ".");
    // Expect prefix ids, then exactly one id for the word, then the id(s) of ".".
    if (ids.size() < prefix_ids.size() + 2 ||
        !std::equal(prefix_ids.begin(), prefix_ids.end(), ids.begin())) {
      throw Error("tokenizer: \"" + word + "\" after \"### Response:\\n\" is not a single piece");
    }
    auto dot = tokenizer.encode(prefix + ".");
    if (ids.size() != dot.size() + 1) {
      throw Error("tokenizer: \"" + word + "\" after \"### Response:\\n\" is not a single piece");
    }
    return ids[prefix_ids.size()];
  };
  return {answer_id("Yes"), answer_id("No")};
}

SpecialIds special_token_ids(const Tokenizer& tokenizer, const TokenizeOptions& options) {
  const SpecialIdsChoice choice = parse_special_ids(options.special_ids);
  SpecialIds ids{0, 0, 0};  // decapoda's BOS and EOS; pad 0 is TALLRec's pad_token_id (unk)
  if (choice.base == "llama") ids = {tokenizer.bos_id(), tokenizer.eos_id(), 0};
  ids.bos = choice.bos.value_or(ids.bos);
  ids.eos = choice.eos.value_or(ids.eos);
  ids.pad = choice.pad.value_or(ids.pad);
  // TALLRec appends EOS to every training sequence, so a tokenizer without one cannot train.
  if (ids.eos < 0)
    throw InputError(
        "the tokenizer names no EOS token (tokenizer_config.json's eos_token beside "
        "tokenizer.json, or generation_config.json's eos_token_id); a grid's special_ids "
        "(or --special-ids) eos=N gives one");
  for (const auto& [name, id] : {std::pair{"bos", ids.bos}, {"eos", ids.eos}, {"pad", ids.pad}})
    if (id >= tokenizer.vocab_size())
      throw InputError("special ids \"" + options.special_ids + "\": " + name + " " +
                       std::to_string(id) + " is not in the tokenizer's vocabulary of " +
                       std::to_string(tokenizer.vocab_size()));
  return ids;
}

void tokenize_records(const Tokenizer& tokenizer, const std::vector<PromptRecord>& records,
                      const std::vector<size_t>& indices, const TokenizeOptions& options,
                      TokenizedArrays& arrays) {
  if (options.cutoff_len < 2) throw InputError("cutoff_len must be at least 2");
  const size_t cutoff = size_t(options.cutoff_len);
  const SpecialIds special = special_token_ids(tokenizer, options);
  const int32_t bos = special.bos, eos = special.eos;
  std::vector<int32_t> ids;
  for (size_t index : indices) {
    if (options.cancel && options.cancel->load()) throw Error("tokenizing cancelled");
    const PromptRecord& record = records.at(index);

    auto eval_pieces = tokenizer.encode(evaluation_prompt(record, options.prompt_template));
    if (bos >= 0) arrays.eval_ids.push_back(bos);
    arrays.eval_ids.insert(arrays.eval_ids.end(), eval_pieces.begin(), eval_pieces.end());
    arrays.eval_offsets.push_back(arrays.eval_ids.size());

    ids.assign(bos >= 0 ? 1 : 0, bos);
    auto pieces = tokenizer.encode(training_prompt(record, options.prompt_template));
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    if (ids.size() > cutoff) ids.resize(cutoff);
    if (ids.back() != eos && ids.size() < cutoff) ids.push_back(eos);
    arrays.train_ids.insert(arrays.train_ids.end(), ids.begin(), ids.end());
    arrays.train_offsets.push_back(arrays.train_ids.size());

    arrays.prompt_lengths.push_back(
        uint32_t(std::min(eval_pieces.size() + (bos >= 0 ? 1 : 0), cutoff)));
    arrays.labels.push_back(int8_t(answer_label(record)));
    arrays.source_index.push_back(uint32_t(index));
  }
}

TokenizeSummary tokenize_file(const Tokenizer& tokenizer, const std::filesystem::path& records_path,
                              const TokenizeOptions& options, std::optional<FewShotSubset> subset,
                              const std::filesystem::path& out_dir) {
  const auto records = read_prompt_records(records_path);
  std::vector<size_t> indices(records.size());
  std::iota(indices.begin(), indices.end(), 0);
  if (subset) indices = few_shot_indices(records.size(), subset->sample, subset->seed);
  if (!options.allow_unlabeled)
    for (size_t index : indices)
      if (answer_label(records[index]) < 0)
        throw InputError(records_path.string() + ": record " + std::to_string(index) +
                         ": output \"" + printable_utf8(records[index].output.substr(0, 40)) +
                         "\" is neither \"Yes.\" nor \"No.\" (--allow-unlabeled tokenizes such "
                         "records for training and "
                         "leaves them out of the AUC)");
  TokenizedArrays arrays;
  tokenize_records(tokenizer, records, indices, options, arrays);
  // A cutoff that truncates every prompt before its answer leaves nothing to score: every run
  // would fail at its first evaluation ("only one class"). Refuse it here, where it is clear.
  const auto cutoff = uint32_t(options.cutoff_len);
  if (!options.allow_cut_answers && !arrays.prompt_lengths.empty() &&
      std::all_of(arrays.prompt_lengths.begin(), arrays.prompt_lengths.end(),
                  [&](uint32_t p) { return p >= cutoff; }))
    throw InputError(records_path.string() + ": cutoff_len " + std::to_string(options.cutoff_len) +
                     " cuts the answer off every record (raise it; TALLRec's is 512; "
                     "--allow-cut-answers to tokenize anyway)");

  TokenizeSummary summary;
  summary.answers = lookup_answer_ids(tokenizer);
  TokenizedMeta meta;
  meta.tokenizer_sha256 = tokenizer.model_sha256();
  meta.prompt_template = std::string(prompt_template_name(options.prompt_template));
  meta.cutoff_len = options.cutoff_len;
  meta.train_on_inputs = options.train_on_inputs;
  const SpecialIds special = special_token_ids(tokenizer, options);
  meta.bos_id = special.bos;
  meta.eos_id = special.eos;
  meta.pad_id = special.pad;
  meta.yes_id = summary.answers.yes;
  meta.no_id = summary.answers.no;
  meta.vocab_size = tokenizer.vocab_size();
  meta.source = records_path.string();
  meta.source_sha256 = sha256_file(records_path);
  if (subset) {
    meta.few_shot = true;
    meta.sample = subset->sample;
    meta.seed = subset->seed;
  }
  write_tokenized(out_dir, meta, arrays);

  summary.records = indices.size();
  summary.train_tokens = arrays.train_ids.size();
  summary.eval_tokens = arrays.eval_ids.size();
  for (size_t i = 0; i + 1 < arrays.train_offsets.size(); ++i) {
    summary.max_train_length = std::max<size_t>(
        summary.max_train_length, arrays.train_offsets[i + 1] - arrays.train_offsets[i]);
  }
  return summary;
}

}  // namespace tallrec
