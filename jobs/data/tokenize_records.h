// Prompt records -> token arrays, as TALLRec's finetune_rec.py tokenize() and evaluate.py do:
//   train ids = [BOS] + ids(training prompt), truncated to cutoff_len; EOS appended when the
//               result is shorter than cutoff_len (and does not already end in EOS);
//   prompt length = len([BOS] + ids(evaluation prompt)) capped at cutoff_len (the part that
//               train_on_inputs=false masks with -100);
//   eval ids  = [BOS] + ids(evaluation prompt), untruncated (evaluate.py does not truncate).
// [BOS] only when the tokenizer puts one before the text (a tokenizer.json may not, e.g. Qwen2).
#pragma once

#include <atomic>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/run_spec.h"  // kTallrecCutoffLen
#include "jobs/data/prompt_record.h"
#include "jobs/data/prompt_template.h"
#include "jobs/data/special_ids.h"
#include "jobs/data/token_file.h"
#include "jobs/data/tokenizer.h"

namespace tallrec {

struct TokenizeOptions {
  PromptTemplate prompt_template = PromptTemplate::kTallrec;
  int64_t cutoff_len = kTallrecCutoffLen;
  bool train_on_inputs = true;  // TALLRec's default
  // A record whose output is neither exactly "Yes." nor "No." is an error naming it, unless
  // this is set: then it is tokenized (it trains) and scoring leaves it out of the AUC.
  bool allow_unlabeled = false;
  // BOS, EOS and pad: the grammar of jobs/data/special_ids.h ("llama", "decapoda", overrides).
  std::string special_ids = "llama";
  // A cutoff that truncates every prompt before its answer is an error unless this is set.
  bool allow_cut_answers = false;
  // When set and true, tokenizing stops at the next record with an Error (the worker's attempt
  // was cancelled or the worker told to stop); nothing is written.
  const std::atomic<bool>* cancel = nullptr;
};

struct SpecialIds {
  int32_t bos, eos, pad;  // bos -1: none
};

// The ids `options.special_ids` asks for, each checked against the tokenizer's vocabulary;
// InputError naming what is wrong.
SpecialIds special_token_ids(const Tokenizer& tokenizer, const TokenizeOptions& options);

struct AnswerIds {
  int32_t yes, no;
};

// The ids of "Yes" and "No" as they appear after "### Response:\n" (LLaMA: 8241 and 3782).
// Throws Error if the tokenizer splits either answer word into several pieces.
AnswerIds lookup_answer_ids(const Tokenizer& tokenizer);

// Tokenizes records[indices[k]] for every k into `arrays` (source_index = indices[k]).
void tokenize_records(const Tokenizer& tokenizer, const std::vector<PromptRecord>& records,
                      const std::vector<size_t>& indices, const TokenizeOptions& options,
                      TokenizedArrays& arrays);

struct FewShotSubset {
  int64_t sample = -1;  // -1: all records (still shuffled twice, as TALLRec does)
  uint64_t seed = 0;
};

struct TokenizeSummary {
  size_t records = 0, train_tokens = 0, eval_tokens = 0, max_train_length = 0;
  AnswerIds answers{};
};

// Reads a prompt JSON file, optionally takes TALLRec's few-shot subset of it (otherwise the
// file's order is kept), tokenizes it and writes the tokenized directory `out_dir`.
TokenizeSummary tokenize_file(const Tokenizer& tokenizer, const std::filesystem::path& records_path,
                              const TokenizeOptions& options, std::optional<FewShotSubset> subset,
                              const std::filesystem::path& out_dir);

}  // namespace tallrec
