#include "nmt/models/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

#include "nmt/models/attention_heads.h"
#include "nmt/models/batched_matmul.h"
#include "nmt/models/layer_norm.h"
#include "nmt/models/dropout.h"
#include "nmt/precision.h"

namespace nmt::models {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

/// Residual connection around `sublayer`: pre-norm x + dropout(f(LN(x))), post-norm LN(x + dropout(f(x))).
/// In pre-norm, LN(x) only feeds f's first product: under bf16 autocast it is written in bf16,
/// and x's gradient from the sum is added in the norm's backward pass (layer_norm_for_residual).
/// sublayer(in, bias) returns f(in); in training it may leave out its last product's bias and
/// give it in *bias instead, for dropout_add to add in its pass (bias is null otherwise).
template <class F>
at::Tensor residual(const at::Tensor& x, torch::nn::LayerNorm& norm, bool pre_norm, double p,
                    bool training, F&& sublayer) {
  at::Tensor bias;
  at::Tensor* out_bias = training ? &bias : nullptr;
  if (pre_norm) {
    auto [normed, skip] = layer_norm_for_residual(norm, x);
    auto y = sublayer(normed, out_bias);
    return models::dropout_add(skip, y, p, training, bias);
  }
  auto y = sublayer(x, out_bias);
  return norm(models::dropout_add(x, y, p, training, bias));
}

torch::nn::LayerNorm layer_norm(int64_t d) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}));
}

}  // namespace

// ---- masks and positions -------------------------------------------------------------------

at::Tensor sinusoidal_positions(int64_t start, int64_t length, int64_t d, const at::TensorOptions& options) {
  auto pos = at::arange(start, start + length, options).unsqueeze(1);              // [L, 1]
  auto even = at::arange(0, d, 2, options);                                        // [⌈d/2⌉]
  auto inv_freq = at::exp(even * (-std::log(10000.0) / static_cast<double>(d)));  // 1/10000^(2i/d)
  auto angles = pos * inv_freq;                                                    // [L, ⌈d/2⌉]
  // Interleave sin (even dimensions) and cos (odd dimensions).
  return at::stack({at::sin(angles), at::cos(angles)}, 2).flatten(1).narrow(1, 0, d);
}

at::Tensor padding_bias(const at::Tensor& keep, at::ScalarType dtype) {
  auto bias = at::zeros(keep.sizes(), keep.options().dtype(dtype)).masked_fill_(keep.logical_not(), kNegInf);
  return bias.view({keep.size(0), 1, 1, keep.size(1)});
}

at::Tensor causal_bias(int64_t queries, int64_t past, const at::TensorOptions& options) {
  auto future = at::ones({queries, past + queries}, options.dtype(at::kBool)).triu(past + 1);
  return at::zeros({queries, past + queries}, options).masked_fill_(future, kNegInf);
}

// ---- multi-head attention ------------------------------------------------------------------

MultiHeadAttentionImpl::MultiHeadAttentionImpl(int64_t d_model, int64_t heads, double attention_dropout)
    : d_model_(d_model), heads_(heads), attention_dropout_(attention_dropout) {
  TORCH_CHECK(d_model % heads == 0, "d_model (", d_model, ") must be divisible by the number of heads (", heads, ")");
  in_proj_ = register_module("in_proj", Linear(d_model, 3 * d_model));
  out_proj_ = register_module("out_proj", Linear(d_model, d_model));
}

std::vector<at::Tensor> MultiHeadAttentionImpl::project(const at::Tensor& x, int64_t first, int64_t n) {
  const bool whole = first == 0 && n == 3;
  // Narrowed views of the weights miss autocast's cache: cast the whole weights (cached) first.
  auto weight = whole ? in_proj_->weight : autocast_operand(in_proj_->weight).narrow(0, first * d_model_, n * d_model_);
  auto narrow = [&](const at::Tensor& bias) { return whole ? bias : bias.narrow(0, first * d_model_, n * d_model_); };
  // Where batched_matmul multiplies views as they are (fp32 CPU), the heads are views of the
  // product. Elsewhere its products would copy each head, so the split copies them in one pass;
  // on the CPU it also adds the bias (in fp32) as it copies, so the product needs none. int8
  // decoding multiplies through the module (set_int8), bias included.
  const bool views = batched_matmul_takes_views(x);
  if (x.is_cpu() && !views && !in_proj_->int8())
    return split_heads(at::linear(x, weight), n, heads_, true, narrow(in_proj_->bias));
  auto y = whole ? in_proj_(x) : at::linear(x, weight, narrow(autocast_operand(in_proj_->bias)));
  return split_heads(y, n, heads_, !views);
}

std::vector<at::Tensor> MultiHeadAttentionImpl::project_qkv(const at::Tensor& x) { return project(x, 0, 3); }

at::Tensor MultiHeadAttentionImpl::project_q(const at::Tensor& x) { return project(x, 0, 1)[0]; }

std::vector<at::Tensor> MultiHeadAttentionImpl::project_kv(const at::Tensor& memory) { return project(memory, 1, 2); }

at::Tensor MultiHeadAttentionImpl::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                          const at::Tensor& bias, at::Tensor* weights, at::Tensor* out_bias) {
  const int64_t B = q.size(0), H = heads_, T = q.size(2), dk = d_model_ / heads_;
  const int64_t N = k.size(0), g = B / N, S = k.size(2);
  TORCH_CHECK(g * N == B, "attend: ", N, " key rows cannot serve ", B, " query rows");
  const double scale = 1.0 / std::sqrt(static_cast<double>(dk));
  // The g query rows of a group as one block of g·T queries: [N, H, g·T, d_k].
  auto grouped = g == 1 ? q : q.reshape({N, g, H, T, dk}).transpose(1, 2).reshape({N, H, g * T, dk});
  auto scores = models::batched_matmul(grouped, k.transpose(-2, -1));  // [N, H, g·T, S], bf16 under autocast
  // The softmax in fp32; in training one pass that also drops out, in the scores' dtype.
  auto attention = attention_softmax_dropout(scores, scale, bias, attention_dropout_, is_training());
  if (weights) {
    auto probs = at_least_fp32(attention.probs);
    *weights = g == 1 ? probs : probs.view({N, H, g, T, S}).transpose(1, 2).reshape({B, H, T, S});
  }
  auto context = models::batched_matmul(attention.dropped, v);  // [N, H, g·T, d_k]
  // → [N, g, T, H, d_k] → [B, T, d]
  auto heads = context.view({N, H, g, T, dk}).permute({0, 2, 3, 1, 4}).reshape({B, T, d_model_});
  if (!out_bias) return out_proj_(heads);
  *out_bias = out_proj_->bias;
  return at::linear(heads, out_proj_->weight);
}

// ---- feed-forward --------------------------------------------------------------------------

FeedForwardImpl::FeedForwardImpl(int64_t d_model, int64_t ff_dim, double activation_dropout)
    : activation_dropout_(activation_dropout) {
  w1_ = register_module("w1", Linear(d_model, ff_dim));
  w2_ = register_module("w2", Linear(ff_dim, d_model));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x, at::Tensor* out_bias) {
  at::Tensor hidden;
  if (is_training() && x.is_cpu()) {
    // The first product without its bias; the bias, ReLU and dropout in one pass after it.
    hidden = bias_relu_dropout(at::linear(x, w1_->weight), w1_->bias, activation_dropout_, true);
  } else {
    hidden = models::dropout(at::relu(w1_(x)), activation_dropout_, is_training());
  }
  if (!out_bias) return w2_(hidden);
  *out_bias = w2_->bias;
  return at::linear(hidden, w2_->weight);
}

// ---- layers --------------------------------------------------------------------------------

TransformerEncoderLayerImpl::TransformerEncoderLayerImpl(const ModelConfig& c)
    : pre_norm_(c.pre_norm), dropout_(c.dropout) {
  self_attn_ = register_module("self_attn", MultiHeadAttention(c.embed_dim, c.heads, c.attention_dropout));
  ffn_ = register_module("ffn", FeedForward(c.embed_dim, c.ff_dim, c.activation_dropout));
  norm1_ = register_module("norm1", layer_norm(c.embed_dim));
  norm2_ = register_module("norm2", layer_norm(c.embed_dim));
}

at::Tensor TransformerEncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& src_bias) {
  const bool training = is_training();
  auto h = residual(x, norm1_, pre_norm_, dropout_, training, [&](const at::Tensor& in, at::Tensor* out_bias) {
    auto qkv = self_attn_->project_qkv(in);
    return self_attn_->attend(qkv[0], qkv[1], qkv[2], src_bias, nullptr, out_bias);
  });
  return residual(h, norm2_, pre_norm_, dropout_, training,
                  [&](const at::Tensor& in, at::Tensor* out_bias) { return ffn_->forward(in, out_bias); });
}

TransformerDecoderLayerImpl::TransformerDecoderLayerImpl(const ModelConfig& c)
    : pre_norm_(c.pre_norm), dropout_(c.dropout) {
  self_attn_ = register_module("self_attn", MultiHeadAttention(c.embed_dim, c.heads, c.attention_dropout));
  cross_attn_ = register_module("cross_attn", MultiHeadAttention(c.embed_dim, c.heads, c.attention_dropout));
  ffn_ = register_module("ffn", FeedForward(c.embed_dim, c.ff_dim, c.activation_dropout));
  norm1_ = register_module("norm1", layer_norm(c.embed_dim));
  norm2_ = register_module("norm2", layer_norm(c.embed_dim));
  norm3_ = register_module("norm3", layer_norm(c.embed_dim));
}

namespace {
/// Appends k, v [B, H, T, d_k] to the cache's self-attention keys and values: into the room a
/// reorder left (in place, so not while autograd records), or else by concatenation.
void append_positions(DecoderLayerCache& cache, const at::Tensor& k, const at::Tensor& v) {
  const int64_t t = cache.self_length, T = k.size(2);
  if (!cache.self_k.defined()) {
    cache.self_k = k;
    cache.self_v = v;
  } else if (cache.self_k.size(2) >= t + T && !at::GradMode::is_enabled()) {
    cache.self_k.narrow(2, t, T).copy_(k);
    cache.self_v.narrow(2, t, T).copy_(v);
  } else {
    cache.self_k = at::cat({cache.keys(), k}, 2);
    cache.self_v = at::cat({cache.values(), v}, 2);
  }
  cache.self_length = t + T;
}
}  // namespace

DecoderLayerCache TransformerDecoderLayerImpl::init_cache(const at::Tensor& memory) {
  DecoderLayerCache cache;
  auto kv = cross_attn_->project_kv(memory);
  cache.cross_k = kv[0];
  cache.cross_v = kv[1];
  return cache;
}

at::Tensor TransformerDecoderLayerImpl::forward(const at::Tensor& x, DecoderLayerCache& cache,
                                                const at::Tensor& self_bias, const at::Tensor& src_bias,
                                                const at::Tensor& cross_k, const at::Tensor& cross_v,
                                                at::Tensor* cross_weights) {
  const bool training = is_training();
  auto h = residual(x, norm1_, pre_norm_, dropout_, training, [&](const at::Tensor& in, at::Tensor* out_bias) {
    auto qkv = self_attn_->project_qkv(in);
    append_positions(cache, qkv[1], qkv[2]);
    return self_attn_->attend(qkv[0], cache.keys(), cache.values(), self_bias, nullptr, out_bias);
  });
  h = residual(h, norm2_, pre_norm_, dropout_, training, [&](const at::Tensor& in, at::Tensor* out_bias) {
    return cross_attn_->attend(cross_attn_->project_q(in), cross_k, cross_v, src_bias, cross_weights, out_bias);
  });
  return residual(h, norm3_, pre_norm_, dropout_, training,
                  [&](const at::Tensor& in, at::Tensor* out_bias) { return ffn_->forward(in, out_bias); });
}

// ---- decoder state -------------------------------------------------------------------------

namespace {
/// The rows a select/reorder picks: `rows` as given (on the caches' device) and a CPU copy with
/// its largest row, made once for all layers' caches.
struct PickedRows {
  const at::Tensor& rows;
  at::Tensor cpu;    ///< [n] int64, contiguous, none negative
  int64_t last = -1; ///< the largest row picked
};

PickedRows picked_rows(const at::Tensor& rows) {
  PickedRows p{rows, rows.to(at::kCPU, at::kLong).contiguous()};
  const int64_t* r = p.cpu.data_ptr<int64_t>();
  for (int64_t i = 0; i < p.cpu.numel(); ++i) {
    TORCH_CHECK(r[i] >= 0, "decoder state: row ", r[i], " selected");
    p.last = std::max(p.last, r[i]);
  }
  return p;
}

/// Rows `picked` of the first `length` positions of a cache [B, H, capacity, d_k], in a new one
/// [rows, H, length + 1, d_k] whose last position is left for the next step to write.
at::Tensor pick_rows_with_room(const at::Tensor& t, int64_t length, const PickedRows& picked) {
  RECORD_USER_SCOPE("nmt::pick_rows_with_room");
  if (!t.defined()) return t;
  const auto& rows = picked.rows;
  const int64_t n = rows.size(0), H = t.size(1), dk = t.size(3);
  auto out = at::empty({n, H, length + 1, dk}, t.options());
  if (!t.is_cpu() || !t.is_contiguous()) {
    auto prefix = out.narrow(2, 0, length);
    at::index_select_out(prefix, t.narrow(2, 0, length), 0, rows);
    return out;
  }
  // One copy of `length` positions per (new row, head). ATen's index_select into the strided
  // prefix goes through TensorIterator: 66 ms against 44 ms for its contiguous index_select in a
  // decoding profile, more than the concatenation this room saves.
  TORCH_CHECK(picked.last < t.size(0), "decoder state: row ", picked.last, " of ", t.size(0), " selected");
  const int64_t* r = picked.cpu.data_ptr<int64_t>();
  const auto element = static_cast<int64_t>(t.element_size());
  const int64_t from_block = t.size(2) * dk * element, to_block = (length + 1) * dk * element;
  const auto bytes = static_cast<size_t>(length * dk * element);
  const char* from = static_cast<const char*>(t.data_ptr());
  char* to = static_cast<char*>(out.data_ptr());
  at::parallel_for(0, n * H, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, to_block)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t i = begin; i < end; ++i)
                       std::memcpy(to + i * to_block, from + (r[i / H] * H + i % H) * from_block, bytes);
                   });
  return out;
}
}  // namespace

std::unique_ptr<DecoderState> TransformerDecoderState::select(const at::Tensor& rows) const {
  const auto picked = picked_rows(rows);
  auto s = without_caches(picked.cpu);
  // The encoder-side tensors are shared: only the record of which source row each row reads changes.
  for (const auto& l : layers)
    s->layers.push_back({pick_rows_with_room(l.self_k, l.self_length, picked),
                         pick_rows_with_room(l.self_v, l.self_length, picked), l.self_length, l.cross_k, l.cross_v});
  return s;
}

std::unique_ptr<DecoderState> TransformerDecoderState::reorder(const at::Tensor& rows) {
  const auto picked = picked_rows(rows);
  auto s = without_caches(picked.cpu);
  for (auto& l : layers) {
    DecoderLayerCache c{pick_rows_with_room(l.self_k, l.self_length, picked), {}, l.self_length, l.cross_k, l.cross_v};
    l.self_k.reset();
    c.self_v = pick_rows_with_room(l.self_v, l.self_length, picked);
    l.self_v.reset();
    s->layers.push_back(std::move(c));
  }
  layers.clear();
  return s;
}

std::unique_ptr<TransformerDecoderState> TransformerDecoderState::without_caches(const at::Tensor& rows) const {
  auto s = std::make_unique<TransformerDecoderState>();
  s->layers.reserve(layers.size());
  s->src_mask = src_mask;
  s->src_bias = src_bias;
  const auto cpu_rows = rows.to(at::kCPU, at::kLong).contiguous();
  const int64_t* r = cpu_rows.data_ptr<int64_t>();
  s->source_rows.reserve(static_cast<size_t>(cpu_rows.numel()));
  for (int64_t i = 0; i < cpu_rows.numel(); ++i) s->source_rows.push_back(source_rows.empty() ? r[i] : source_rows[r[i]]);
  s->position = position;
  return s;
}

namespace {

/// How decoder rows read the shared encoder-side rows: `gather` (undefined: all of them, in
/// order) selects the source rows, each serving `group` consecutive decoder rows.
struct SourceView {
  at::Tensor gather;
  int64_t group = 1;
};

SourceView source_view(const TransformerDecoderState& state) {
  const auto& rows = state.source_rows;
  const int64_t B = static_cast<int64_t>(rows.size()), N = state.src_mask.size(0);
  if (rows.empty()) return {};
  auto options = at::TensorOptions().dtype(at::kLong);
  // Beam search keeps the beams of a sentence as equal runs of rows: one key row per run.
  int64_t run = 1;
  while (run < B && rows[run] == rows[0]) ++run;
  bool uniform = B % run == 0;
  std::vector<int64_t> firsts;
  for (int64_t i = 0; uniform && i < B; i += run) {
    for (int64_t j = i; uniform && j < i + run; ++j) uniform = rows[j] == rows[i];
    firsts.push_back(rows[i]);
  }
  if (!uniform) return {at::tensor(rows, options).to(state.src_mask.device()), 1};
  bool all_in_order = static_cast<int64_t>(firsts.size()) == N;
  for (int64_t i = 0; all_in_order && i < N; ++i) all_in_order = firsts[i] == i;
  if (all_in_order) return {at::Tensor(), run};
  return {at::tensor(firsts, options).to(state.src_mask.device()), run};
}

}  // namespace

// ---- the model -----------------------------------------------------------------------------

TransformerSeq2SeqImpl::TransformerSeq2SeqImpl(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab)
    : config_(config) {
  const int64_t d = config.embed_dim;
  if (config.heads <= 0 || d % config.heads != 0)
    throw ConfigError("model.embed_dim (" + std::to_string(d) + ") must be divisible by model.heads (" +
                      std::to_string(config.heads) + ")");
  auto embeddings = register_token_embeddings(*this, config, src_vocab, tgt_vocab, d);
  src_embed_ = embeddings.src;
  tgt_embed_ = embeddings.tgt;
  if (config.learned_positions) {
    src_positions_ = register_module("src_positions", torch::nn::Embedding(kMaxLearnedPositions, d));
    tgt_positions_ = register_module("tgt_positions", torch::nn::Embedding(kMaxLearnedPositions, d));
  }
  encoder_ = register_module("encoder", torch::nn::ModuleList());
  for (int i = 0; i < config.encoder_layers; ++i) {
    encoder_layers_.emplace_back(config);
    encoder_->push_back(encoder_layers_.back());
  }
  decoder_ = register_module("decoder", torch::nn::ModuleList());
  for (int i = 0; i < config.decoder_layers; ++i) {
    decoder_layers_.emplace_back(config);
    decoder_->push_back(decoder_layers_.back());
  }
  if (config.pre_norm) {
    encoder_norm_ = register_module("encoder_norm", layer_norm(d));
    decoder_norm_ = register_module("decoder_norm", layer_norm(d));
  }
  if (config.tie_embeddings) output_bias_ = register_parameter("output_bias", at::zeros({tgt_vocab}));
  else output_ = register_module("output", Linear(d, tgt_vocab));

  // Xavier-uniform linear layers with zero biases; embeddings N(0, d^-1/2), so that
  // embeddings · √d have unit variance (as fairseq and Marian).
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_uniform_(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* embedding = m->as<torch::nn::Embedding>()) {
      embedding->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(d)));
    }
  }
}

at::Tensor TransformerSeq2SeqImpl::embed(const at::Tensor& tokens, torch::nn::Embedding& table,
                                         torch::nn::Embedding& positions, int64_t start) {
  const int64_t L = tokens.size(1), d = config_.embed_dim;
  auto x = table(tokens) * std::sqrt(static_cast<double>(d));  // [B, L, d]
  at::Tensor pos;
  if (config_.learned_positions) {
    pos = learned_positions(positions, start, L);
  } else {
    pos = sinusoidal_positions(start, L, d, x.options());
  }
  return models::dropout(x + pos, config_.dropout, is_training());
}

at::Tensor TransformerSeq2SeqImpl::encode(const at::Tensor& src, const at::Tensor& src_bias) {
  auto x = embed(src, src_embed_, src_positions_, 0);
  for (auto& layer : encoder_layers_) x = layer->forward(x, src_bias);
  return config_.pre_norm ? encoder_norm_(x) : x;
}

std::unique_ptr<TransformerDecoderState> TransformerSeq2SeqImpl::init_state(const at::Tensor& memory,
                                                                           const at::Tensor& src_mask) {
  auto state = std::make_unique<TransformerDecoderState>();
  state->src_mask = src_mask;
  state->src_bias = padding_bias(src_mask, memory.scalar_type());
  const auto operand = autocast_operand(memory);  // cast once for all layers' projections
  for (auto& layer : decoder_layers_) state->layers.push_back(layer->init_cache(operand));
  return state;
}

at::Tensor TransformerSeq2SeqImpl::output_logits(const at::Tensor& hidden) {
  return config_.tie_embeddings ? tied_output_(hidden, tgt_embed_->weight, output_bias_, is_training()) : output_(hidden);
}

OutputLayerInput TransformerSeq2SeqImpl::output_layer(const at::Tensor& hidden) {
  return config_.tie_embeddings ? output_layer_input(hidden, tgt_embed_->weight, output_bias_)
                                : output_layer_input(hidden, output_->weight, output_->bias);
}

std::pair<at::Tensor, at::Tensor> TransformerSeq2SeqImpl::decode_hidden(const at::Tensor& tgt,
                                                                      TransformerDecoderState& state) {
  const int64_t T = tgt.size(1);
  auto x = embed(tgt, tgt_embed_, tgt_positions_, state.position);
  // One new position attends to every cached one: no mask needed.
  const auto self_bias = T > 1 ? causal_bias(T, state.position, x.options()) : at::Tensor();
  const auto view = source_view(state);
  auto shared = [&view](const at::Tensor& t) { return view.gather.defined() ? t.index_select(0, view.gather) : t; };
  const auto src_bias = shared(state.src_bias);
  at::Tensor weights;  // [B, H, T, S] of the last layer
  for (size_t i = 0; i < decoder_layers_.size(); ++i) {
    const bool last = i + 1 == decoder_layers_.size();
    auto& cache = state.layers[i];
    x = decoder_layers_[i]->forward(x, cache, self_bias, src_bias, shared(cache.cross_k), shared(cache.cross_v),
                                    last ? &weights : nullptr);
  }
  if (config_.pre_norm) x = layer_norm_for_product(decoder_norm_, x);  // feeds the output layer only
  state.position += T;
  return {std::move(x), weights.defined() ? weights.mean(1) : weights};
}

ForwardOutput TransformerSeq2SeqImpl::forward(const data::Batch& batch) {
  auto src_mask = batch.src.ne(data::kPad);  // [B, S]
  auto state = init_state(encode(batch.src, padding_bias(src_mask, tgt_embed_->weight.scalar_type())), src_mask);
  ForwardOutput out;
  auto [hidden, attention] = decode_hidden(batch.tgt_in, *state);
  out.attention = std::move(attention);
  if (output_layer_wanted()) out.output_layer = output_layer(hidden);
  else out.log_probs = log_softmax_of_logits(output_logits(hidden));
  return out;
}

void TransformerSeq2SeqImpl::set_int8(bool on) {
  Seq2SeqImpl::set_int8(on);
  if (config_.tie_embeddings) tied_output_.set_int8(on, tgt_embed_->weight, output_bias_);
}

std::unique_ptr<DecoderState> TransformerSeq2SeqImpl::start(const at::Tensor& src) {
  auto src_mask = src.ne(data::kPad);
  return init_state(encode(src, padding_bias(src_mask, tgt_embed_->weight.scalar_type())), src_mask);
}

StepOutput TransformerSeq2SeqImpl::step(const at::Tensor& prev, DecoderState& state) {
  auto& s = dynamic_cast<TransformerDecoderState&>(state);
  auto [hidden, attention] = decode_hidden(prev.unsqueeze(1), s);
  auto logits = output_logits(hidden);
  return {at::Tensor(), attention.defined() ? attention.squeeze(1) : attention, logits.squeeze(1)};
}

}  // namespace nmt::models
