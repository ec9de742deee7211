// baseline-gradients: one forward and backward of a Table 1 baseline on given weights, for the
// RecBole oracle (tests/oracle/test_baselines_vs_recbole.py).
#include <filesystem>
#include <memory>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "common/atomic_file.h"
#include "common/baseline_spec.h"
#include "common/json_text.h"
#include "jobs/train/baselines/baseline_loss.h"
#include "jobs/train/baselines/baseline_trainer.h"
#include "jobs/train/commands/commands.h"
#include "jobs/train/safetensors.h"

namespace tallrec {

void add_baseline_commands(TrainerCli& cli) {
  struct Args {
    std::string spec, weights, out;
    bool training = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = cli.app.add_subcommand(
      "baseline-gradients",
      "Scores of a baseline's training records on given weights, its loss (DROS: with the robust "
      "term) and the loss's gradient of every parameter");
  cmd->add_option("--spec", args->spec, "Baseline spec (its method, sizes and inputs file)")
      ->required();
  cmd->add_option("--weights", args->weights,
                  "safetensors with every parameter under RecBole's names (default: the "
                  "spec's seeded initialisation)");
  cmd->add_option("--out", args->out,
                  "safetensors to write: score [N], loss [], grad.NAME for each parameter")
      ->required();
  cmd->callback([args, &cli] {
    cli.apply_threads();
    const BaselineSpec spec =
        parse_baseline_spec(parse_json_from_outside(read_file(args->spec), args->spec), args->spec);
    at::manual_seed(spec.seed);
    const BaselineInputs in = read_baseline_inputs(spec.inputs);
    auto model = make_sequential_model(spec, {in.items, in.users, in.max_history});
    if (!args->weights.empty()) {
      SafetensorsFile file(args->weights);
      at::NoGradGuard no_grad;
      for (auto& [name, p] : model->parameters())
        p.copy_(file.load(name, at::kFloat, p.sizes().vec()));
    }
    const SequenceBatch batch = sequence_batch(in.train, in.max_history);
    const at::Tensor label = at::tensor(at::ArrayRef<int64_t>(in.train.label));
    const at::Tensor score = model->score(batch, /*training=*/false);
    const at::Tensor loss = baseline_loss(
        *model, batch, label, spec, dros_item_weights(in.train, in.items), /*training=*/false);
    loss.backward();
    std::vector<TensorToWrite> out = {{"score", score.detach()}, {"loss", loss.detach()}};
    for (auto& [name, p] : model->parameters()) {
      out.push_back({"weight." + name, p.detach()});
      out.push_back({"grad." + name, p.grad()});
    }
    write_safetensors(args->out, out);
  });
}

}  // namespace tallrec
