// Gradient checkpointing as PyTorch's reentrant torch.utils.checkpoint: the forward runs
// without recording a graph; backward replays it (with the forward's RNG state, so dropout
// masks repeat) and back-propagates through the replay. LoRA weights are leaves of the replay,
// so their gradients accumulate directly. The custom-function header stays in this file alone.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "jobs/train/llama.h"
#include "jobs/train/rng_state.h"

namespace tallrec {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Replay : torch::CustomClassHolder {
  Replay(const LlamaModel* m, int64_t l, LayerContext c, ForwardOptions o)
      : model(m), layer(l), ctx(std::move(c)), options(o) {}
  const LlamaModel* model;
  int64_t layer;
  LayerContext ctx;
  ForwardOptions options;
  at::Tensor rng_state;
};

at::Generator generator_for(const at::Device& device) {
  return at::globalContext().defaultGenerator(device);
}

struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor h, c10::intrusive_ptr<Replay> replay) {
    replay->rng_state = generator_state(generator_for(h.device()));
    ctx->save_for_backward({h});
    ctx->saved_data["replay"] = c10::IValue::make_capsule(replay);
    at::NoGradGuard no_grad;
    return llama_layer(*replay->model, replay->layer, h, replay->ctx, replay->options);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto replay = c10::static_intrusive_pointer_cast<Replay>(ctx->saved_data["replay"].toCapsule());
    at::Tensor h = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    at::Generator gen = generator_for(h.device());
    const at::Tensor now = generator_state(gen);
    set_generator_state(gen, replay->rng_state);
    at::Tensor out;
    {
      at::AutoGradMode enable(true);
      out = llama_layer(*replay->model, replay->layer, h, replay->ctx, replay->options);
    }
    set_generator_state(gen, now);
    torch::autograd::backward({out}, {grad_outputs[0]});
    return {h.grad(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed_layer(const LlamaModel& model, int64_t layer, const at::Tensor& h,
                              const LayerContext& ctx, const ForwardOptions& options) {
  auto replay = c10::make_intrusive<Replay>(&model, layer, ctx, options);
  return CheckpointedLayer::apply(h, replay);
}

}  // namespace tallrec
