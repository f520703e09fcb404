#include "nmt/models/rnn.h"

#include <torch/nn/init.h>
#include <torch/nn/utils/rnn.h>

namespace nmt::models {
namespace {
at::Tensor rows_of(const at::Tensor& t, const at::Tensor& rows) {
  return t.defined() ? t.index_select(0, rows) : t;
}
}  // namespace

std::unique_ptr<DecoderState> RnnDecoderState::select(const at::Tensor& rows) const {
  auto s = std::make_unique<RnnDecoderState>();
  s->memory = rows_of(memory, rows);
  s->proj_keys = rows_of(proj_keys, rows);
  s->src_mask = rows_of(src_mask, rows);
  for (auto& t : h) s->h.push_back(rows_of(t, rows));
  for (auto& t : c) s->c.push_back(rows_of(t, rows));
  s->feed = rows_of(feed, rows);
  return s;
}

RnnSeq2SeqImpl::RnnSeq2SeqImpl(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab)
    : config_(config), lstm_(config.cell == RnnCell::Lstm) {
  const int64_t E = config.embed_dim, H = config.hidden_size, L = config.decoder_layers;
  tgt_embed_ = register_module("tgt_embed", torch::nn::Embedding(tgt_vocab, E));
  if (config.share_embeddings) {
    TORCH_CHECK(src_vocab == tgt_vocab, "share_embeddings needs one joint vocabulary");
    src_embed_ = tgt_embed_;
  } else {
    src_embed_ = register_module("src_embed", torch::nn::Embedding(src_vocab, E));
  }
  const double between = config.encoder_layers > 1 ? config.dropout : 0.0;
  if (lstm_) {
    enc_lstm_ = register_module("encoder", torch::nn::LSTM(torch::nn::LSTMOptions(E, H / 2)
        .num_layers(config.encoder_layers).bidirectional(true).batch_first(true).dropout(between)));
  } else {
    enc_gru_ = register_module("encoder", torch::nn::GRU(torch::nn::GRUOptions(E, H / 2)
        .num_layers(config.encoder_layers).bidirectional(true).batch_first(true).dropout(between)));
  }
  bridge_ = register_module("bridge", torch::nn::Linear(H, L * H));

  const bool bahdanau = config.attention == AttentionType::Bahdanau;
  const int64_t extra = (bahdanau || config.input_feeding) ? H : 0;
  cells_ = register_module("decoder", torch::nn::ModuleList());
  for (int64_t l = 0; l < L; ++l) {
    const int64_t in = l == 0 ? E + extra : H;
    if (lstm_) cells_->push_back(torch::nn::LSTMCell(in, H));
    else cells_->push_back(torch::nn::GRUCell(in, H));
  }
  GlobalAttentionImpl::Score score = GlobalAttentionImpl::Score::Additive;
  if (!bahdanau && config.attention_score == AttentionScore::Dot) score = GlobalAttentionImpl::Score::Dot;
  if (!bahdanau && config.attention_score == AttentionScore::General) score = GlobalAttentionImpl::Score::General;
  attention_ = register_module("attention", GlobalAttention(score, H, H, H));
  combine_ = register_module("combine", torch::nn::Linear(torch::nn::LinearOptions(2 * H, H).bias(false)));
  if (config.tie_embeddings) {
    if (H != E) pre_output_ = register_module("pre_output", torch::nn::Linear(torch::nn::LinearOptions(H, E).bias(false)));
    output_bias_ = register_parameter("output_bias", torch::zeros({tgt_vocab}));
  } else {
    output_ = register_module("output", torch::nn::Linear(H, tgt_vocab));
  }
  dropout_ = register_module("dropout", torch::nn::Dropout(config.dropout));

  // Uniform initialisation in [-0.1, 0.1] (Luong et al. 2015; OpenNMT's param_init).
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) p.uniform_(-0.1, 0.1);
}

std::unique_ptr<RnnDecoderState> RnnSeq2SeqImpl::encode(const at::Tensor& src) {
  const int64_t B = src.size(0), S = src.size(1), H = config_.hidden_size;
  auto mask = src.ne(data::kPad);                                     // [B, S]
  auto lengths = mask.sum(1).to(at::kCPU, at::kLong);                 // [B]
  auto emb = dropout_(src_embed_(src));                               // [B, S, E]
  namespace rnn = torch::nn::utils::rnn;
  auto packed = rnn::pack_padded_sequence(emb, lengths, /*batch_first=*/true, /*enforce_sorted=*/false);
  auto out_packed = lstm_ ? std::get<0>(enc_lstm_->forward_with_packed_input(packed))
                          : std::get<0>(enc_gru_->forward_with_packed_input(packed));
  auto memory = std::get<0>(rnn::pad_packed_sequence(out_packed, true, 0.0, S));  // [B, S, H]
  memory = dropout_(memory);

  auto state = std::make_unique<RnnDecoderState>();
  state->memory = memory;
  state->src_mask = mask;
  state->proj_keys = attention_->project_keys(memory);
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

at::Tensor RnnSeq2SeqImpl::decode_step(const at::Tensor& emb, RnnDecoderState& s, at::Tensor& weights) {
  const bool bahdanau = config_.attention == AttentionType::Bahdanau;
  at::Tensor context;
  at::Tensor x = emb;
  if (bahdanau) {
    auto att = attention_(s.h.back(), s.proj_keys, s.memory, s.src_mask);
    context = att.context;
    weights = att.weights;
    x = at::cat({emb, context}, 1);
  } else if (config_.input_feeding) {
    x = at::cat({emb, s.feed}, 1);
  }
  for (size_t l = 0; l < cells_->size(); ++l) {
    if (l > 0) x = dropout_(x);
    if (lstm_) {
      auto hc = cells_[l]->as<torch::nn::LSTMCell>()->forward(x, std::make_tuple(s.h[l], s.c[l]));
      s.h[l] = std::get<0>(hc);
      s.c[l] = std::get<1>(hc);
    } else {
      s.h[l] = cells_[l]->as<torch::nn::GRUCell>()->forward(x, s.h[l]);
    }
    x = s.h[l];
  }
  if (!bahdanau) {
    auto att = attention_(x, s.proj_keys, s.memory, s.src_mask);
    context = att.context;
    weights = att.weights;
  }
  s.feed = at::tanh(combine_(at::cat({context, x}, 1)));  // h̃_t
  return dropout_(s.feed);
}

at::Tensor RnnSeq2SeqImpl::output_log_probs(const at::Tensor& attn_vec) {
  at::Tensor logits;
  if (config_.tie_embeddings) {
    auto x = pre_output_ ? pre_output_(attn_vec) : attn_vec;
    logits = at::linear(x, tgt_embed_->weight, output_bias_);
  } else {
    logits = output_(attn_vec);
  }
  return at::log_softmax(logits, -1);
}

ForwardOutput RnnSeq2SeqImpl::forward(const data::Batch& batch) {
  auto state = encode(batch.src);
  auto emb = dropout_(tgt_embed_(batch.tgt_in));  // [B, T, E]
  const int64_t T = emb.size(1);
  std::vector<at::Tensor> outs, alignments;
  outs.reserve(T);
  alignments.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor weights;
    outs.push_back(decode_step(emb.select(1, t), *state, weights));
    alignments.push_back(weights);
  }
  ForwardOutput out;
  out.log_probs = output_log_probs(at::stack(outs, 1));  // [B, T, V]
  out.attention = at::stack(alignments, 1);              // [B, T, S]
  return out;
}

std::unique_ptr<DecoderState> RnnSeq2SeqImpl::start(const at::Tensor& src) { return encode(src); }

StepOutput RnnSeq2SeqImpl::step(const at::Tensor& prev, DecoderState& state) {
  auto& s = dynamic_cast<RnnDecoderState&>(state);
  at::Tensor weights;
  auto attn_vec = decode_step(dropout_(tgt_embed_(prev)), s, weights);
  return {output_log_probs(attn_vec), weights};
}

}  // namespace nmt::models
