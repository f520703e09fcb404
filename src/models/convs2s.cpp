#include "nmt/models/convs2s.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/utils.h>

#include "nmt/models/batched_matmul.h"
#include "nmt/models/dropout.h"
#include "nmt/models/embeddings.h"
#include "nmt/precision.h"

namespace nmt::models {
namespace {

const double kSqrtHalf = std::sqrt(0.5);

/// Section 3.5: N(0, gain·(1 − p)/n) for a layer of n inputs fed through dropout p; gain 4 before
/// a GLU (which halves the variance twice over: half the units, and the gate's σ ≈ 1/2).
double init_std(double gain, double dropout, int64_t inputs) {
  return std::sqrt(gain * (1.0 - dropout) / static_cast<double>(inputs));
}

/// x [B, L, H] with `left` and `right` zero positions added along L.
at::Tensor pad_time(const at::Tensor& x, int64_t left, int64_t right) {
  return at::constant_pad_nd(x, {0, 0, left, right});
}

/// `count` layers of type Layer built from `config`, registered on `model` as the ModuleList
/// `name`; returns them typed.
template <class Layer>
std::vector<Layer> register_stack(torch::nn::Module& model, const std::string& name, int count,
                                  const ModelConfig& config) {
  auto list = model.register_module(name, torch::nn::ModuleList());
  std::vector<Layer> layers;
  for (int i = 0; i < count; ++i) {
    layers.emplace_back(config);
    list->push_back(layers.back());
  }
  return layers;
}

/// Scales the gradient that flows back through x by `factor`; the value is x exactly.
at::Tensor scale_gradient(const at::Tensor& x, double factor) {
  if (!x.requires_grad()) return x;
  auto fixed = x.detach();
  return fixed + (x - fixed) * factor;
}

}  // namespace

// ---- weight-normalised linear layer and convolution ----------------------------------------

WeightNormLinearImpl::WeightNormLinearImpl(int64_t in, int64_t out, double std) {
  torch::NoGradGuard no_grad;
  auto v = at::randn({out, in}) * std;
  v_ = register_parameter("v", v);
  g_ = register_parameter("g", v.norm(2, {1}));
  bias_ = register_parameter("bias", at::zeros({out}));
}

at::Tensor WeightNormLinearImpl::weight() const {
  return v_ * (g_ / v_.norm(2, {1})).unsqueeze(1);
}

at::Tensor WeightNormLinearImpl::forward(const at::Tensor& x) { return at::linear(x, weight(), bias_); }

ConvGluImpl::ConvGluImpl(int64_t channels, int64_t kernel_width, double std) : kernel_width_(kernel_width) {
  conv_ = register_module("conv", WeightNormLinear(channels * kernel_width, 2 * channels, std));
}

at::Tensor ConvGluImpl::forward(const at::Tensor& padded) {
  // [B, T + k − 1, H] → windows [B, T, H, k] (a view) → [B, T, H·k], channels-major like Conv1d.
  auto windows = padded.unfold(1, kernel_width_, 1).flatten(2);
  return at::glu(conv_(windows), -1);
}

// ---- layers --------------------------------------------------------------------------------

ConvS2SEncoderLayerImpl::ConvS2SEncoderLayerImpl(const ModelConfig& c)
    : kernel_width_(c.kernel_width), dropout_(c.dropout) {
  conv_ = register_module(
      "conv", ConvGlu(c.hidden_size, c.kernel_width, init_std(4, c.dropout, int64_t{c.kernel_width} * c.hidden_size)));
}

at::Tensor ConvS2SEncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& keep) {
  // Zeroed padding reads like the zeros beyond the sentence end: a row's outputs do not depend
  // on how much padding its batch needs.
  auto in = models::dropout(x, dropout_, is_training()) * keep;
  auto out = conv_(pad_time(in, (kernel_width_ - 1) / 2, kernel_width_ / 2));
  return (out + x) * kSqrtHalf;
}

ConvS2SDecoderLayerImpl::ConvS2SDecoderLayerImpl(const ModelConfig& c) : dropout_(c.dropout) {
  conv_ = register_module(
      "conv", ConvGlu(c.hidden_size, c.kernel_width, init_std(4, c.dropout, int64_t{c.kernel_width} * c.hidden_size)));
  attn_in_ = register_module("attn_in", WeightNormLinear(c.hidden_size, c.embed_dim, init_std(1, 0, c.hidden_size)));
  attn_out_ = register_module("attn_out", WeightNormLinear(c.embed_dim, c.hidden_size, init_std(1, 0, c.embed_dim)));
}

at::Tensor ConvS2SDecoderLayerImpl::forward(const at::Tensor& x, at::Tensor& context, const at::Tensor& target_embedding,
                                            const ConvS2SMemory& memory, at::Tensor* weights) {
  // Causal convolution: the k − 1 positions before x come from the context, none from after.
  auto padded = at::cat({context, models::dropout(x, dropout_, is_training())}, 1);  // [B, k − 1 + T, H]
  context = padded.narrow(1, x.size(1), context.size(1));
  auto h = conv_(padded);  // [B, T, H]
  // Multi-step attention (section 3.3).
  auto d = (attn_in_(h) + target_embedding) * kSqrtHalf;                                // [B, T, E]
  auto probs = at::softmax(at_least_fp32(batched_matmul(d, memory.keys.transpose(1, 2))) + memory.src_bias, -1);  // [B, T, S]
  if (weights) *weights = probs;
  auto c = batched_matmul(probs, memory.values) * memory.src_scale;  // [B, T, E]
  auto attended = (attn_out_(c) + h) * kSqrtHalf;
  return (attended + x) * kSqrtHalf;
}

// ---- decoder state -------------------------------------------------------------------------

std::unique_ptr<DecoderState> ConvS2SDecoderState::select(const at::Tensor& rows) const {
  auto pick = [&rows](const at::Tensor& t) { return t.index_select(0, rows); };
  auto s = std::make_unique<ConvS2SDecoderState>();
  s->contexts.reserve(contexts.size());
  for (const auto& c : contexts) s->contexts.push_back(pick(c));
  s->memory = {pick(memory.keys), pick(memory.values), pick(memory.src_bias), pick(memory.src_scale)};
  s->position = position;
  return s;
}

// ---- the model -----------------------------------------------------------------------------

ConvS2SSeq2SeqImpl::ConvS2SSeq2SeqImpl(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab)
    : config_(config) {
  const int64_t E = config.embed_dim, H = config.hidden_size;
  const double p = config.dropout;
  if (p >= 1.0) throw ConfigError("model.dropout must be below 1 for model.type: convs2s");
  auto embeddings = register_token_embeddings(*this, config, src_vocab, tgt_vocab, E);
  src_embed_ = embeddings.src;
  tgt_embed_ = embeddings.tgt;
  src_positions_ = register_module("src_positions", torch::nn::Embedding(kMaxLearnedPositions, E));
  tgt_positions_ = register_module("tgt_positions", torch::nn::Embedding(kMaxLearnedPositions, E));

  encoder_in_ = register_module("encoder_in", WeightNormLinear(E, H, init_std(1, p, E)));
  encoder_layers_ = register_stack<ConvS2SEncoderLayer>(*this, "encoder", config.encoder_layers, config);
  encoder_out_ = register_module("encoder_out", WeightNormLinear(H, E, init_std(1, 0, H)));

  decoder_in_ = register_module("decoder_in", WeightNormLinear(E, H, init_std(1, p, E)));
  decoder_layers_ = register_stack<ConvS2SDecoderLayer>(*this, "decoder", config.decoder_layers, config);
  decoder_out_ = register_module("decoder_out", WeightNormLinear(H, E, init_std(1, 0, H)));
  if (config.tie_embeddings) output_bias_ = register_parameter("output_bias", at::zeros({tgt_vocab}));
  else output_ = register_module("output", WeightNormLinear(E, tgt_vocab, init_std(1, p, E)));

  // Section 3.5: every embedding N(0, 0.1²).
  torch::NoGradGuard no_grad;
  for (auto* table : {&src_embed_, &tgt_embed_, &src_positions_, &tgt_positions_}) (*table)->weight.normal_(0.0, 0.1);
}

at::Tensor ConvS2SSeq2SeqImpl::embed(const at::Tensor& tokens, torch::nn::Embedding& table,
                                     torch::nn::Embedding& positions, int64_t start) {
  return models::dropout(table(tokens) + learned_positions(positions, start, tokens.size(1)), config_.dropout,
                         is_training());
}

std::unique_ptr<ConvS2SDecoderState> ConvS2SSeq2SeqImpl::encode(const at::Tensor& src) {
  const auto src_mask = src.ne(data::kPad);  // [B, S]
  auto e = embed(src, src_embed_, src_positions_, 0);                        // [B, S, E]
  const auto keep = src_mask.unsqueeze(2).to(e.scalar_type());                // [B, S, 1]
  auto x = encoder_in_(e);                                                    // [B, S, H]
  for (auto& layer : encoder_layers_) x = layer->forward(x, keep);
  // Section 3.4: the encoder output feeds every decoder layer's attention.
  auto z = scale_gradient(encoder_out_(x) * keep, 1.0 / (2.0 * config_.decoder_layers));  // [B, S, E]

  auto state = std::make_unique<ConvS2SDecoderState>();
  state->memory.keys = z;
  state->memory.values = (z + e * keep) * kSqrtHalf;
  state->memory.src_bias = at::zeros({src.size(0), 1, src.size(1)}, e.options())
                                .masked_fill_(src_mask.logical_not().unsqueeze(1), -std::numeric_limits<double>::infinity());
  state->memory.src_scale = keep.sum({1, 2}).sqrt().view({src.size(0), 1, 1});     // [B, 1, 1]
  const auto context = at::zeros({src.size(0), config_.kernel_width - 1, config_.hidden_size}, e.options());
  state->contexts.assign(decoder_layers_.size(), context);
  return state;
}

at::Tensor ConvS2SSeq2SeqImpl::output_logits(const at::Tensor& hidden) {
  return config_.tie_embeddings ? tied_output_(hidden, tgt_embed_->weight, output_bias_, is_training()) : output_(hidden);
}

OutputLayerInput ConvS2SSeq2SeqImpl::output_layer(const at::Tensor& hidden) {
  return config_.tie_embeddings ? output_layer_input(hidden, tgt_embed_->weight, output_bias_)
                                : output_layer_input(hidden, output_->weight(), output_->bias());
}

std::pair<at::Tensor, at::Tensor> ConvS2SSeq2SeqImpl::decode_hidden(const at::Tensor& tgt, ConvS2SDecoderState& state) {
  auto g = embed(tgt, tgt_embed_, tgt_positions_, state.position);  // [B, T, E]
  auto x = decoder_in_(g);                                           // [B, T, H]
  at::Tensor attention;  // summed over layers, then averaged
  for (size_t i = 0; i < decoder_layers_.size(); ++i) {
    at::Tensor weights;
    x = decoder_layers_[i]->forward(x, state.contexts[i], g, state.memory, &weights);
    attention = attention.defined() ? attention + weights : weights;
  }
  auto out = models::dropout(decoder_out_(x), config_.dropout, is_training());  // [B, T, E]
  state.position += tgt.size(1);
  return {std::move(out), attention / static_cast<double>(decoder_layers_.size())};
}

ForwardOutput ConvS2SSeq2SeqImpl::forward(const data::Batch& batch) {
  auto state = encode(batch.src);
  ForwardOutput out;
  auto [hidden, attention] = decode_hidden(batch.tgt_in, *state);
  out.attention = std::move(attention);
  if (output_layer_wanted()) out.output_layer = output_layer(hidden);
  else out.log_probs = log_softmax_of_logits(output_logits(hidden));
  return out;
}

void ConvS2SSeq2SeqImpl::set_int8(bool on) {
  Seq2SeqImpl::set_int8(on);  // ConvS2S: its weight-normalised layers stay fp32
  if (config_.tie_embeddings) tied_output_.set_int8(on, tgt_embed_->weight, output_bias_);
}

std::unique_ptr<DecoderState> ConvS2SSeq2SeqImpl::start(const at::Tensor& src) { return encode(src); }

StepOutput ConvS2SSeq2SeqImpl::step(const at::Tensor& prev, DecoderState& state) {
  auto& s = dynamic_cast<ConvS2SDecoderState&>(state);
  auto [hidden, attention] = decode_hidden(prev.unsqueeze(1), s);
  auto logits = output_logits(hidden);
  return {at::Tensor(), attention.squeeze(1), logits.squeeze(1)};
}

}  // namespace nmt::models
