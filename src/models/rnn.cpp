#include "nmt/models/rnn.h"

#include <utility>

#include <torch/nn/init.h>
#include <torch/nn/utils/rnn.h>

#include "nmt/precision.h"
#include "nmt/models/embeddings.h"
#include "nmt/models/lstm_cell.h"
#include "nmt/models/packed_rnn.h"

namespace nmt::models {
namespace {
at::Tensor rows_of(const at::Tensor& t, const at::Tensor& rows) {
  return t.defined() ? t.index_select(0, rows) : t;
}
}  // namespace

std::unique_ptr<DecoderState> RnnDecoderState::select(const at::Tensor& rows) const {
  auto s = std::make_unique<RnnDecoderState>();
  // The encoder-side tensors hold the same values in every row of a source sentence: when each
  // new row reads the sentence the old row at its place read (beam search reordering the beams
  // of each sentence), they are shared instead of copied.
  const auto cpu_rows = rows.to(at::kCPU, at::kLong).contiguous();
  const int64_t n = cpu_rows.numel(), *r = cpu_rows.data_ptr<int64_t>();
  s->source_rows.resize(static_cast<size_t>(n));
  bool same_sources = n == memory.size(0);
  for (int64_t i = 0; i < n; ++i) {
    s->source_rows[i] = source_rows.empty() ? r[i] : source_rows[r[i]];
    same_sources = same_sources && s->source_rows[i] == (source_rows.empty() ? i : source_rows[i]);
  }
  s->memory = same_sources ? memory : rows_of(memory, rows);
  s->proj_keys = same_sources ? proj_keys : rows_of(proj_keys, rows);
  s->src_mask = same_sources ? src_mask : rows_of(src_mask, rows);
  for (auto& t : h) s->h.push_back(rows_of(t, rows));
  for (auto& t : c) s->c.push_back(rows_of(t, rows));
  s->feed = rows_of(feed, rows);
  s->step = step;
  return s;
}

RnnSeq2SeqImpl::RnnSeq2SeqImpl(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab)
    : config_(config), lstm_(config.cell == RnnCell::Lstm) {
  const int64_t E = config.embed_dim, H = config.hidden_size, L = config.decoder_layers;
  auto embeddings = register_token_embeddings(*this, config, src_vocab, tgt_vocab, E);
  src_embed_ = embeddings.src;
  tgt_embed_ = embeddings.tgt;
  const double between = config.encoder_layers > 1 ? config.dropout : 0.0;
  if (lstm_) {
    enc_lstm_ = register_module("encoder", torch::nn::LSTM(torch::nn::LSTMOptions(E, H / 2)
        .num_layers(config.encoder_layers).bidirectional(true).batch_first(true).dropout(between)));
  } else {
    enc_gru_ = register_module("encoder", torch::nn::GRU(torch::nn::GRUOptions(E, H / 2)
        .num_layers(config.encoder_layers).bidirectional(true).batch_first(true).dropout(between)));
  }
  bridge_ = register_module("bridge", Linear(H, L * H));

  const bool bahdanau = config.attention.type == AttentionType::Bahdanau;
  const int64_t extra = (bahdanau || config.attention.input_feeding) ? H : 0;
  cells_ = register_module("decoder", torch::nn::ModuleList());
  for (int64_t l = 0; l < L; ++l) {
    const int64_t in = l == 0 ? E + extra : H;
    if (lstm_) cells_->push_back(torch::nn::LSTMCell(in, H));
    else cells_->push_back(torch::nn::GRUCell(in, H));
  }
  attention_ = RnnAttention(*this, config.attention, H);
  if (config.attention.mode == AttentionMode::Variational) {
    TORCH_CHECK(!bahdanau, "variational attention needs attention: luong");
    TORCH_CHECK(config.attention.window == AttentionWindow::Global, "variational attention needs attention_window: global");
    if (config.attention.variational_mode != VariationalMode::Exact)
      inference_ = register_module(
          "inference", InferenceNetwork(config.cell, E, config.attention.inference_hidden > 0 ? config.attention.inference_hidden : H,
                                        config.attention.inference_layers, config.dropout));
  }
  combine_ = register_module("combine", Linear(torch::nn::LinearOptions(2 * H, H).bias(false)));
  if (config.tie_embeddings) {
    if (H != E) pre_output_ = register_module("pre_output", Linear(torch::nn::LinearOptions(H, E).bias(false)));
    output_bias_ = register_parameter("output_bias", torch::zeros({tgt_vocab}));
  } else {
    output_ = register_module("output", Linear(H, tgt_vocab));
  }

  // Uniform initialisation in [-0.1, 0.1] (Luong et al. 2015; OpenNMT's param_init).
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) p.uniform_(-0.1, 0.1);
}

torch::nn::utils::rnn::PackedSequence RnnSeq2SeqImpl::encoder_layers(const torch::nn::utils::rnn::PackedSequence& packed) {
  if (!packed.data().is_cpu())
    return lstm_ ? std::get<0>(enc_lstm_->forward_with_packed_input(packed))
                 : std::get<0>(enc_gru_->forward_with_packed_input(packed));
  const auto weights = lstm_ ? enc_lstm_->all_weights() : enc_gru_->all_weights();
  const auto x = packed_bidirectional_rnn(packed.data(), packed.batch_sizes(), weights, config_.encoder_layers, lstm_,
                                          [this](const at::Tensor& y) { return drop(y); });
  return torch::nn::utils::rnn::PackedSequence(x, packed.batch_sizes(), packed.sorted_indices(), packed.unsorted_indices());
}

std::unique_ptr<RnnDecoderState> RnnSeq2SeqImpl::encode(const at::Tensor& src) {
  const int64_t B = src.size(0), S = src.size(1), H = config_.hidden_size;
  auto mask = src.ne(data::kPad);                                     // [B, S]
  auto lengths = mask.sum(1).to(at::kCPU, at::kLong);                 // [B]
  auto emb = drop(src_embed_(src));                                   // [B, S, E]
  namespace rnn = torch::nn::utils::rnn;
  auto packed = rnn::pack_padded_sequence(emb, lengths, /*batch_first=*/true, /*enforce_sorted=*/false);
  auto out_packed = encoder_layers(packed);
  auto memory = std::get<0>(rnn::pad_packed_sequence(out_packed, true, 0.0, S));  // [B, S, H]
  // Variational attention feeds a single encoder state x_z to the output layer, which would carry
  // a whole dropout mask that a soft average smooths out: its memory is not dropped (Deng et al.).
  if (config_.attention.mode != AttentionMode::Variational) memory = drop(memory);

  auto state = std::make_unique<RnnDecoderState>();
  state->memory = memory;
  state->src_mask = mask;
  state->proj_keys = attention_.prepare(memory);
  // Initial decoder states: tanh(W · mean of the encoder outputs over real positions).
  auto mean = memory.sum(1) / mask.sum(1, true).to(memory.scalar_type());  // [B, H]
  auto init = at::tanh(bridge_(mean)).chunk(config_.decoder_layers, 1);
  for (auto& h : init) {
    state->h.push_back(h.contiguous());
    if (lstm_) state->c.push_back(at::zeros_like(h));
  }
  state->feed = at::zeros({B, H}, memory.options());
  return state;
}

RnnSeq2SeqImpl::DecodeStep RnnSeq2SeqImpl::decode_step(const at::Tensor& emb, RnnDecoderState& s) {
  const bool bahdanau = attention_.before_cell();
  DecodeStep out;
  at::Tensor context;
  at::Tensor x = emb;
  if (bahdanau) {
    out.attention = attention_.attend(s.h.back(), s.memory, s.proj_keys, s.src_mask, s.step);
    context = attention_.context(out.attention, s.memory, is_training(), out.sample_log_prob);
    x = at::cat({emb, context}, 1);
  } else if (config_.attention.input_feeding) {
    x = at::cat({emb, s.feed}, 1);
  }
  for (size_t l = 0; l < cells_->size(); ++l) {
    if (l > 0) x = drop(x);
    if (lstm_ && x.is_cpu()) {
      // LibTorch's gate products and sum, then the element-wise part in one pass (lstm_cell.h).
      const auto& cell = *cells_[l]->as<torch::nn::LSTMCell>();
      auto gates = at::linear(x, cell.weight_ih, cell.bias_ih).add_(at::linear(s.h[l], cell.weight_hh, cell.bias_hh));
      std::tie(s.h[l], s.c[l]) = lstm_cell_pointwise(gates, s.c[l]);
    } else if (lstm_) {
      auto hc = cells_[l]->as<torch::nn::LSTMCell>()->forward(x, std::make_tuple(s.h[l], s.c[l]));
      s.h[l] = std::get<0>(hc);
      s.c[l] = std::get<1>(hc);
    } else {
      s.h[l] = cells_[l]->as<torch::nn::GRUCell>()->forward(x, s.h[l]);
    }
    x = s.h[l];
  }
  if (!bahdanau) {
    out.attention = attention_.attend(x, s.memory, s.proj_keys, s.src_mask, s.step);
    context = attention_.context(out.attention, s.memory, is_training(), out.sample_log_prob);
  }
  out.hidden = x;
  s.feed = at::tanh(combine_(at::cat({context, x}, 1)));  // h̃_t
  ++s.step;
  out.attn_vec = drop(s.feed);
  return out;
}

at::Tensor RnnSeq2SeqImpl::output_log_probs(const at::Tensor& attn_vec) {
  return log_softmax_of_logits(output_logits(attn_vec));
}

at::Tensor RnnSeq2SeqImpl::output_logits(const at::Tensor& attn_vec) {
  at::Tensor logits;
  if (config_.tie_embeddings) {
    auto x = pre_output_ ? pre_output_(attn_vec) : attn_vec;
    logits = tied_output_(x, tgt_embed_->weight, output_bias_, is_training());
  } else {
    logits = output_(attn_vec);
  }
  return logits;
}

OutputLayerInput RnnSeq2SeqImpl::output_layer_for_loss(const at::Tensor& attn_vec) {
  if (config_.tie_embeddings)
    return output_layer_input(pre_output_ ? pre_output_(attn_vec) : attn_vec, tgt_embed_->weight, output_bias_);
  return output_layer_input(attn_vec, output_->weight, output_->bias);
}

at::Tensor RnnSeq2SeqImpl::position_log_probs(const at::Tensor& hidden, const at::Tensor& memory) {
  // W_c [m_s; h_t] = W_m m_s + W_h h_t: project both once, then broadcast over (t, s).
  const int64_t H = config_.hidden_size;
  const auto& w = combine_->weight;                                          // [H, 2H]
  auto from_memory = at::linear(memory, w.slice(1, 0, H)).unsqueeze(1);      // [B, 1, S, H]
  auto from_hidden = at::linear(hidden, w.slice(1, H, 2 * H)).unsqueeze(2);  // [B, T, 1, H]
  return output_log_probs(at::tanh(from_memory + from_hidden));              // [B, T, S, V]
}

ForwardOutput RnnSeq2SeqImpl::forward(const data::Batch& batch) {
  auto state = encode(batch.src);
  auto emb = drop(tgt_embed_(batch.tgt_in));  // [B, T, E]
  const int64_t T = emb.size(1);
  std::vector<at::Tensor> outs, hidden, alignments, log_alignments, sampled;
  for (int64_t t = 0; t < T; ++t) {
    auto step = decode_step(emb.select(1, t), *state);
    outs.push_back(step.attn_vec);
    hidden.push_back(step.hidden);
    alignments.push_back(step.attention.weights);
    log_alignments.push_back(step.attention.log_weights);
    if (step.sample_log_prob.defined()) sampled.push_back(step.sample_log_prob);
  }
  ForwardOutput out;
  out.attention = at::stack(alignments, 1);  // [B, T, S]
  auto log_alignment = at::stack(log_alignments, 1);
  if (config_.attention.mode == AttentionMode::Variational) {
    variational_forward(batch, *state, at::stack(hidden, 1), log_alignment, out);  // sets aux_loss (KL, REINFORCE)
  } else if (sampled.empty() && output_layer_wanted()) {
    out.output_layer = output_layer_for_loss(at::stack(outs, 1));  // hard attention's objective needs log_probs
  } else {
    out.log_probs = output_log_probs(at::stack(outs, 1));  // [B, T, V]
  }
  auto attention_loss = attention_.auxiliary_loss(out.log_probs, batch.tgt_out, batch.tgt_in,
                                                  sampled.empty() ? at::Tensor() : at::stack(sampled, 1),
                                                  out.attention, log_alignment, state->src_mask);
  if (attention_loss.defined()) out.aux_loss = out.aux_loss.defined() ? out.aux_loss + attention_loss : attention_loss;
  return out;
}

LatentOutputLayer RnnSeq2SeqImpl::output_layer() const {
  if (config_.tie_embeddings)
    return {pre_output_ ? pre_output_->weight : at::Tensor(), tgt_embed_->weight, output_bias_};
  return {at::Tensor(), output_->weight, output_->bias};
}

void RnnSeq2SeqImpl::variational_forward(const data::Batch& batch, const RnnDecoderState& state,
                                         const at::Tensor& hidden, const at::Tensor& log_prior,
                                         ForwardOutput& out) {
  const int64_t H = config_.hidden_size;
  auto tgt_mask = batch.tgt_out.ne(data::kPad);  // [B, T]
  const auto& w = combine_->weight;              // [H, 2H]: W_c [m_s; h_t] = W_m m_s + W_h h_t
  VariationalInputs in;
  in.pairs = {at::linear(state.memory, w.slice(1, 0, H)), at::linear(hidden, w.slice(1, H, 2 * H)), batch.tgt_out,
              tgt_mask, state.src_mask};
  in.layer = output_layer();
  in.log_prior = log_prior;
  in.memory = state.memory;
  if (inference_)
    in.log_q = inference_(drop(src_embed_(batch.src)), state.src_mask, drop(tgt_embed_(batch.tgt_out)),
                          tgt_mask);
  in.log_probs_at = [&](const at::Tensor& context) {
    return output_log_probs(at::tanh(combine_(at::cat({context, hidden}, 2))));
  };
  if (is_training()) variational_training_objective(config_.attention, in, out);
  else variational_evaluation(in, out);
}

void RnnSeq2SeqImpl::set_int8(bool on) {
  Seq2SeqImpl::set_int8(on);
  if (config_.tie_embeddings) tied_output_.set_int8(on, tgt_embed_->weight, output_bias_);
}

std::unique_ptr<DecoderState> RnnSeq2SeqImpl::start(const at::Tensor& src) { return encode(src); }

StepOutput RnnSeq2SeqImpl::step(const at::Tensor& prev, DecoderState& state) {
  auto& s = dynamic_cast<RnnDecoderState&>(state);
  auto out = decode_step(drop(tgt_embed_(prev)), s);
  if (config_.attention.mode == AttentionMode::Variational) {
    // Translation uses the prior only: p(y_t) = Σ_s α_ts p(y_t | z_t = s).
    auto per_position = position_log_probs(out.hidden.unsqueeze(1), s.memory);  // [B, 1, S, V]
    auto lp = marginal_log_probs(out.attention.log_weights.unsqueeze(1), per_position).squeeze(1);
    return {lp, out.attention.weights, at::Tensor()};
  }
  return {at::Tensor(), out.attention.weights, output_logits(out.attn_vec)};
}

}  // namespace nmt::models
