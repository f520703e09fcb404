#pragma once
/// @file rnn.h
/// RNN encoder-decoder with attention.
/// Encoder: embeddings → bidirectional LSTM/GRU (hidden_size/2 per direction, packed so padding
/// never enters a state). Decoder (Luong et al. 2015, "Effective Approaches to Attention-based
/// Neural Machine Translation"): stacked LSTM/GRU cells; attentional vector
/// h̃_t = tanh(W_c [c_t; h_t]) predicts y_t; with input feeding h̃_{t-1} is fed with y_{t-1}.
/// With `attention: bahdanau` (Bahdanau et al. 2015) the query is the previous state h_{t-1}
/// and the context c_t is an input of the RNN cell.
///
/// The attention (model config `attention`, rnn_attention.h): score function, a local window
/// (local-m / local-p, local_attention.h), coverage regularisation (coverage.h), hard attention
/// trained with REINFORCE (hard_attention.h) and variational attention (variational.h, needs
/// `attention: luong`).
#include <memory>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/rnn.h>

#include "nmt/models/dropout.h"
#include "nmt/models/int8.h"
#include "nmt/models/rnn_attention.h"
#include "nmt/models/variational.h"
#include "nmt/models/seq2seq.h"

namespace nmt::models {

/// Decoder state of the RNN: encoder memory, per-sentence key projections, layer states and
/// the attentional vector fed to the next step. All tensors have rows = batch entries.
struct RnnDecoderState : DecoderState {
  at::Tensor memory;     ///< [B, S, H] encoder outputs (values of the attention)
  at::Tensor proj_keys;  ///< [B, S, A] attention keys, projected once per sentence
  at::Tensor src_mask;   ///< [B, S] bool, true on real source tokens
  std::vector<at::Tensor> h, c;  ///< per decoder layer, [B, H] (c empty for GRU)
  at::Tensor feed;       ///< [B, H] attentional vector h̃_{t-1} (input feeding)
  int64_t step = 0;      ///< target position t of the next step (local-m's p_t = t)
  /// The source sentence (row of start()'s batch) each row's memory, proj_keys and src_mask
  /// hold; empty: row i holds sentence i.
  std::vector<int64_t> source_rows;
  /// Rows `rows` of every tensor; memory, proj_keys and src_mask are shared, not copied, when
  /// every new row holds the same source sentence as the old row at its position.
  std::unique_ptr<DecoderState> select(const at::Tensor& rows) const override;
};

class RnnSeq2SeqImpl : public Seq2SeqImpl {
 public:
  RnnSeq2SeqImpl(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab);
  ForwardOutput forward(const data::Batch& batch) override;
  std::unique_ptr<DecoderState> start(const at::Tensor& src) override;
  StepOutput step(const at::Tensor& prev, DecoderState& state) override;
  void set_int8(bool on) override;

 private:
  /// What one decoder step produces.
  struct DecodeStep {
    at::Tensor attn_vec;         ///< [B, H] h̃_t after dropout (predicts y_t; unused by variational)
    at::Tensor hidden;           ///< [B, H] top-layer RNN state h_t
    AttentionOutput attention;   ///< alignment distribution α_t (the prior, for variational)
    at::Tensor sample_log_prob;  ///< [B] log α_t(z_t) of the sampled position (hard, training)
  };
  /// src [B, S] → initial state with memory [B, S, H].
  std::unique_ptr<RnnDecoderState> encode(const at::Tensor& src);
  /// The bidirectional encoder over a packed batch [Σ lengths, E] → [Σ lengths, H]. On the CPU
  /// one layer at a time (packed_bidirectional_layer, packed_rnn.h) with the module's own weights
  /// and models::dropout between the layers (LibTorch's multi-layer call draws Bernoulli masks
  /// there); elsewhere the module itself.
  torch::nn::utils::rnn::PackedSequence encoder_layers(const torch::nn::utils::rnn::PackedSequence& packed);
  /// One decoder step from embedded input emb [B, E]; updates state (and state.step).
  /// Shared by forward() and step(), so teacher forcing and decoding compute the same thing.
  DecodeStep decode_step(const at::Tensor& emb, RnnDecoderState& state);
  /// h̃ [..., H] → log-probs [..., V].
  at::Tensor output_log_probs(const at::Tensor& attn_vec);
  /// h̃ [..., H] → the output layer's logits [..., V] (before log-softmax).
  at::Tensor output_logits(const at::Tensor& attn_vec);
  /// h̃ [B, T, H] → the output layer and its input, for the training loss.
  OutputLayerInput output_layer_for_loss(const at::Tensor& attn_vec);
  /// Variational attention in decoding: log p(v | z = s) [B, T, S, V] for hidden [B, T, H],
  /// memory [B, S, H], with h̃_ts = tanh(W_c [m_s; h_t]) (T = 1 in step()).
  at::Tensor position_log_probs(const at::Tensor& hidden, const at::Tensor& memory);
  /// The output layer's tensors, for the fused per-position loss of variational attention.
  LatentOutputLayer output_layer() const;
  /// The variational part of forward() (variational.h): in training out.nll and aux_loss, in
  /// eval mode the exact marginal log_probs, nll, bound_nll, posterior and diagnostics.
  void variational_forward(const data::Batch& batch, const RnnDecoderState& state, const at::Tensor& hidden,
                           const at::Tensor& log_prior, ForwardOutput& out);
  ModelConfig config_;
  bool lstm_;
  torch::nn::Embedding src_embed_{nullptr}, tgt_embed_{nullptr};
  torch::nn::LSTM enc_lstm_{nullptr};
  torch::nn::GRU enc_gru_{nullptr};
  Linear bridge_{nullptr};
  torch::nn::ModuleList cells_{nullptr};
  RnnAttention attention_;                 ///< score, window and mode (rnn_attention.h)
  InferenceNetwork inference_{nullptr};    ///< variational attention's q (not for mode exact)
  Linear combine_{nullptr};
  Linear pre_output_{nullptr};  ///< H → E when the output layer is tied and H ≠ E
  Linear output_{nullptr};      ///< untied output layer
  TiedProjection tied_output_;  ///< x·Eᵀ + output_bias_ (tie_embeddings), int8 after set_int8
  at::Tensor output_bias_;                 ///< tied output layer bias [V]
  /// Dropout of p = model.dropout in training (models::dropout: the counter-based mask, not
  /// ATen's Bernoulli draws; checkpoints of the earlier torch::nn::Dropout submodule, which held
  /// no tensors, load unchanged).
  at::Tensor drop(const at::Tensor& x) const { return models::dropout(x, config_.dropout, is_training()); }
};

}  // namespace nmt::models
