// Which BOS, EOS and pad ids a tokenized set uses, as a grid's `special_ids` or
// `tallrec data tokenize --special-ids` writes it: comma-separated items, each either a base
//   llama     the tokenizer's own BOS and EOS (LLaMA's SentencePiece: 1 and 2; a tokenizer.json:
//             its post-processor's BOS, if any, and its folder's eos_token); the default
//   decapoda  BOS = EOS = 0, what TALLRec's pinned transformers 4.28 with decapoda's tokenizer
//             files put in its sequences (docs/dev/data.md)
// or an override of one id: bos=N, bos=none (no BOS), eos=N, pad=N. Pad is 0 unless overridden
// (TALLRec sets pad_token_id = 0). Examples: "llama", "decapoda", "llama,pad=2", "bos=none,eos=7".
// Parsing needs no tokenizer (the coordinator checks a grid with it); the ids are checked against
// the tokenizer's vocabulary when they are resolved (tokenize_records.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tallrec {

struct SpecialIdsChoice {
  std::string base = "llama";            // "llama" or "decapoda"
  std::optional<int32_t> bos, eos, pad;  // overrides; bos -1 = none
};

// InputError naming the item that is wrong (an unknown base or key, a base twice or after an
// override, a key twice, an id that is not a non-negative integer below 2^31, eos=none, pad=none).
SpecialIdsChoice parse_special_ids(const std::string& text);

}  // namespace tallrec
