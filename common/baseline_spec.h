// BaselineSpec: everything one attempt of a Table 1 baseline needs (a sequential recommender
// trained on the interactions behind the few-shot prompts; docs/baselines.md), and the one place
// its defaults are written. A trainer spec whose "method" is not "llm" is one of these
// (schemas/baseline_spec.schema.json); without "method" it is a RunSpec (common/run_spec.h).
//
// The defaults are what TALLRec's authors said they used (its issues #36 and #37): the DROS code
// base's hidden size 64, lr 1e-3, L2 1e-6 and dropout 0.1, trained only on the few-shot
// records, the last layer a sigmoid for like/dislike. The architectures' other sizes are
// RecBole 1.2.1's defaults (SASRec: 2 layers, 2 heads, inner size 256; GRU4Rec: 1 layer; Caser: 4
// vertical and 8 horizontal filters per height). What TALLRec did not publish (batch size,
// epochs, early stopping) is our choice, named here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/spec_enums.h"

namespace tallrec {

struct BaselineSpec {
  Method method = Method::kSasRec;  // never kLlm; kDros trains SASRec with DROS's loss
  std::string inputs;               // the run's interactions as ids (jobs/data/baseline_inputs.h)
  uint64_t seed = 0;                // initialisation, dropout and each epoch's order
  int64_t hidden_size = 64;         // embedding and hidden size (DROS: 64)
  double lr = 1e-3;                 // Adam (DROS: 1e-3)
  double weight_decay = 1e-6;       // Adam's L2 penalty (DROS: 1e-6)
  double dropout = 0.1;             // every dropout of the model (DROS: 0.1)
  int64_t batch_size = 256;         // records per step: every few-shot set of Table 1 is one batch
  int64_t epochs = 200;             // at most; validation after every epoch
  int64_t early_stopping_patience = 20;  // epochs without a better validation AUC
  int64_t eval_batch_size = 1024;
  int64_t sasrec_layers = 2, sasrec_heads = 2, sasrec_inner_size = 256;  // RecBole's
  int64_t gru4rec_layers = 1;                                            // RecBole's
  int64_t caser_vertical_filters = 4, caser_horizontal_filters = 8;      // RecBole's nv, nh
  // DROS (Yang et al., SIGIR 2023; its code base is the one TALLRec's baselines came from): the
  // like/dislike loss plus dros_alpha x a distributionally robust term over every item's score,
  // weighted by the training targets' popularity (jobs/train/baselines/baseline_loss.h).
  double dros_alpha = 0.1;  // one of DROS's scripts' default (the others ship 0: off)
  double dros_beta = 1.0;   // DROS's robust radius
  int threads = 1;          // models this small run fastest on one thread (0: every core)
};

// The method a trainer spec names: its "method" field, Method::kLlm when it has none.
// InputError naming `origin` for a method that is not a name of Method.
Method spec_method(const nlohmann::json& spec, const std::string& origin);

// Every field a baseline spec may have (schemas/baseline_spec.schema.json lists the same).
const std::vector<std::string>& baseline_spec_fields();
nlohmann::json baseline_spec_json(const BaselineSpec& s);
// Parses and validates; InputError names the origin and the field ("method": "llm" is refused:
// that is a RunSpec).
BaselineSpec parse_baseline_spec(const nlohmann::json& spec, const std::string& origin);

// The baseline spec of a grid run (coordinator/grid.h): its method and seed, then the grid's
// `baselines` settings (the run's "baseline"); `inputs` is the worker's inputs file. InputError
// as parse_baseline_spec.
BaselineSpec baseline_spec_of_run(const nlohmann::json& grid_run, const std::string& inputs);

}  // namespace tallrec
