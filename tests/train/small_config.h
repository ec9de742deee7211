// A model small enough for exact checks in milliseconds: GQA (4 query heads, 2 KV heads), two
// layers. Written once for llama_test and lora_test.
#pragma once

#include "common/model_config.h"

namespace tallrec::test {

inline LlamaConfig small_config() {
  LlamaConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

}  // namespace tallrec::test
