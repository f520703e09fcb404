#pragma once
/// @file transformer.h
/// The Transformer encoder-decoder (Vaswani et al. 2017, "Attention Is All You Need").
///
/// Encoder: embeddings · √d_model + positions → N × [self-attention, feed-forward].
/// Decoder: embeddings · √d_model + positions → N × [causal self-attention, attention over the
/// encoder output, feed-forward] → output layer (optionally tied to the target embedding).
/// Every sublayer has a residual connection with dropout on its branch, and layer normalisation
/// either after the residual sum (post-norm, as in the paper) or on the branch input (pre-norm,
/// Wang et al. 2019, "Learning Deep Transformer Models for Machine Translation"; the encoder and
/// decoder then end with one more LayerNorm). Positions are sinusoidal (the paper) or learned.
///
/// Notation: B batch rows, S source length, T target length, d = d_model (model.embed_dim),
/// H heads (model.heads), d_k = d / H, F = model.ff_dim, V vocabulary size.
///
/// Incremental decoding keeps every per-sentence cache in TransformerDecoderState (never on the
/// modules), so beam search reorders it with `select` like any other state.
#include <memory>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "nmt/models/int8.h"
#include <torch/nn/modules/normalization.h>

#include "nmt/models/embeddings.h"
#include "nmt/models/seq2seq.h"

namespace nmt::models {

/// Sinusoidal position encodings for positions [start, start + length) (no length limit, unlike
/// the kMaxLearnedPositions of learned positions):
/// PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)). Returns [length, d].
at::Tensor sinusoidal_positions(int64_t start, int64_t length, int64_t d, const at::TensorOptions& options);

/// Additive attention bias: 0 where `keep` is true, −∞ where it is false.
/// keep [B, S] bool (true = real token) → [B, 1, 1, S], broadcastable over heads and queries.
at::Tensor padding_bias(const at::Tensor& keep, at::ScalarType dtype);

/// Additive causal bias for T new queries following `past` cached positions: [T, past + T],
/// 0 where key position j ≤ past + t (query t sees itself and everything before), −∞ after.
at::Tensor causal_bias(int64_t queries, int64_t past, const at::TensorOptions& options);

/// Multi-head scaled dot-product attention: softmax(Q Kᵀ / √d_k + bias) V for all heads in one
/// batched product. The projections W_Q, W_K, W_V are stored as one [3d, d] matrix so that
/// self-attention projects queries, keys and values with a single matrix product.
class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  MultiHeadAttentionImpl(int64_t d_model, int64_t heads, double attention_dropout);

  /// Self-attention projections of x [B, T, d] → {q, k, v}, each [B, H, T, d_k].
  std::vector<at::Tensor> project_qkv(const at::Tensor& x);
  /// Query projection of x [B, T, d] → [B, H, T, d_k].
  at::Tensor project_q(const at::Tensor& x);
  /// Key and value projections of memory [B, S, d] → {k, v}, each [B, H, S, d_k].
  std::vector<at::Tensor> project_kv(const at::Tensor& memory);

  /// Attend with projected q [B, H, T, d_k], k and v [N, H, S, d_k]; bias broadcastable to
  /// [N, H, T, S] (undefined: no mask). N = B, or N divides B and each key row serves the
  /// g = B / N consecutive query rows of a group (the beams of one sentence), which attend as one
  /// [g·T, S] product instead of g copies of the keys. Returns the output projection of the
  /// concatenated heads [B, T, d]; when `weights` is non-null it receives the attention
  /// probabilities [B, H, T, S] (before attention dropout; exactly zero where the bias is −∞).
  /// When `out_bias` is non-null, the output projection's bias [d] is not added but given there
  /// (for the residual's dropout_add to add).
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& bias, at::Tensor* weights = nullptr, at::Tensor* out_bias = nullptr);

  int64_t heads() const { return heads_; }

 private:
  /// Projections first..first+n−1 (0: Q, 1: K, 2: V) of x [B, L, d] → n tensors [B, H, L, d_k].
  std::vector<at::Tensor> project(const at::Tensor& x, int64_t first, int64_t n);

  int64_t d_model_, heads_;
  double attention_dropout_;
  Linear in_proj_{nullptr};   ///< [3d, d]: rows 0..d-1 W_Q, then W_K, then W_V
  Linear out_proj_{nullptr};  ///< W_O [d, d]
};
TORCH_MODULE(MultiHeadAttention);

/// Position-wise feed-forward network: W_2 · dropout(ReLU(W_1 x + b_1)) + b_2, d → F → d.
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t d_model, int64_t ff_dim, double activation_dropout);
  /// x [..., d] → [..., d]. When `out_bias` is non-null, W_2's bias b_2 [d] is not added but
  /// given there (for the residual's dropout_add to add).
  at::Tensor forward(const at::Tensor& x, at::Tensor* out_bias = nullptr);

 private:
  double activation_dropout_;
  Linear w1_{nullptr}, w2_{nullptr};
};
TORCH_MODULE(FeedForward);

/// One encoder layer: self-attention and feed-forward sublayers.
class TransformerEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerEncoderLayerImpl(const ModelConfig& config);
  /// x [B, S, d]; src_bias [B, 1, 1, S] from padding_bias. Returns [B, S, d].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& src_bias);

 private:
  bool pre_norm_;
  double dropout_;
  MultiHeadAttention self_attn_{nullptr};
  FeedForward ffn_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
};
TORCH_MODULE(TransformerEncoderLayer);

/// Per-layer decoder caches: keys and values of the target prefix (self-attention; grown by the
/// new positions at every call) and of the encoder output (cross-attention; fixed).
struct DecoderLayerCache {
  /// [B, H, capacity, d_k] (undefined at first): the first `self_length` positions are the
  /// prefix's keys and values; a reordered state leaves room for one more position, which the
  /// next step writes in place (no copy of the prefix per step; grad mode off).
  at::Tensor self_k, self_v;
  int64_t self_length = 0;      ///< positions decoded so far
  at::Tensor cross_k, cross_v;  ///< [N, H, S, d_k], one row per source sentence (see source_rows)
  /// The prefix's keys and values, [B, H, self_length, d_k] (views).
  at::Tensor keys() const { return self_k.narrow(2, 0, self_length); }
  at::Tensor values() const { return self_v.narrow(2, 0, self_length); }
};

/// One decoder layer: causal self-attention, attention over the encoder output, feed-forward.
class TransformerDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerDecoderLayerImpl(const ModelConfig& config);
  /// Cross-attention keys and values of memory [B, S, d] (the encoder output).
  DecoderLayerCache init_cache(const at::Tensor& memory);
  /// x [B, T, d] holds the T positions following those already in `cache` (teacher forcing:
  /// all positions and an empty self cache; incremental decoding: T = 1). Appends their keys
  /// and values to the cache. self_bias [T, t+T] (causal; undefined when T = 1); the encoder
  /// side: src_bias [N, 1, 1, S] and the cross-attention keys/values [N, H, S, d_k] (the cache's
  /// rows, or the source rows these B rows read; N divides B, see MultiHeadAttention::attend).
  /// `cross_weights`, when non-null, receives the cross-attention probabilities [B, H, T, S].
  /// Returns [B, T, d].
  at::Tensor forward(const at::Tensor& x, DecoderLayerCache& cache, const at::Tensor& self_bias,
                     const at::Tensor& src_bias, const at::Tensor& cross_k, const at::Tensor& cross_v,
                     at::Tensor* cross_weights = nullptr);

 private:
  bool pre_norm_;
  double dropout_;
  MultiHeadAttention self_attn_{nullptr}, cross_attn_{nullptr};
  FeedForward ffn_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
};
TORCH_MODULE(TransformerDecoderLayer);

/// Decoder state for incremental decoding. Rows are batch entries (sentence × beam). `select`
/// reorders the self-attention caches along dim 0, so reordered beams carry their own prefixes,
/// while the encoder-side tensors (cross-attention keys/values, source mask) keep one row per
/// source sentence and are shared, not copied: `source_rows` records which one each row reads.
struct TransformerDecoderState : DecoderState {
  std::vector<DecoderLayerCache> layers;  ///< one per decoder layer
  at::Tensor src_mask;  ///< [N, S] bool, true on real source tokens
  at::Tensor src_bias;  ///< [N, 1, 1, S] additive mask (padding_bias of src_mask)
  /// [B] the source row of each decoder row; empty: row i reads source row i (B = N).
  std::vector<int64_t> source_rows;
  int64_t position = 0; ///< target positions decoded so far (the next token's position)
  std::unique_ptr<DecoderState> select(const at::Tensor& rows) const override;
  /// select() that frees each layer's self-attention cache as soon as its reordered copy exists:
  /// the caches are most of decoding's memory, and beam search needs only the new state.
  std::unique_ptr<DecoderState> reorder(const at::Tensor& rows) override;

 private:
  /// A state with this one's rows `rows` of everything but the self-attention caches.
  std::unique_ptr<TransformerDecoderState> without_caches(const at::Tensor& rows) const;
};

/// The Transformer as a Seq2Seq model (model.type: transformer).
class TransformerSeq2SeqImpl : public Seq2SeqImpl {
 public:
  /// Throws ConfigError when embed_dim is not divisible by heads, or share_embeddings is set
  /// with different source and target vocabulary sizes.
  TransformerSeq2SeqImpl(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab);
  /// Teacher forcing; `attention` is the last decoder layer's cross-attention averaged over
  /// heads [B, T, S].
  ForwardOutput forward(const data::Batch& batch) override;
  /// Encodes src [B, S] and precomputes every decoder layer's cross-attention keys and values.
  std::unique_ptr<DecoderState> start(const at::Tensor& src) override;
  /// One target position for every row, reusing the cached keys and values of earlier positions;
  /// `attention` is the last layer's cross-attention averaged over heads [B, S].
  StepOutput step(const at::Tensor& prev, DecoderState& state) override;
  void set_int8(bool on) override;

 private:
  /// src [B, S] → encoder output [B, S, d] (final LayerNorm applied with pre-norm).
  at::Tensor encode(const at::Tensor& src, const at::Tensor& src_bias);
  /// Initial decoder state for encoder output `memory`.
  std::unique_ptr<TransformerDecoderState> init_state(const at::Tensor& memory, const at::Tensor& src_mask);
  /// Decoder over the next T target tokens tgt [B, T] (positions state.position ...) up to the
  /// output layer, advancing the state. Returns the output layer's input [B, T, E] and the
  /// head-averaged attention [B, T, S].
  std::pair<at::Tensor, at::Tensor> decode_hidden(const at::Tensor& tgt, TransformerDecoderState& state);
  /// The output layer applied to its input hidden [B, T, E] → logits [B, T, V].
  at::Tensor output_logits(const at::Tensor& hidden);
  /// The output layer and its input hidden [B, T, E] for the training loss.
  OutputLayerInput output_layer(const at::Tensor& hidden);
  /// Scaled token embeddings plus positions, with dropout: tokens [B, L] → [B, L, d].
  at::Tensor embed(const at::Tensor& tokens, torch::nn::Embedding& table,
                   torch::nn::Embedding& positions, int64_t start);

  ModelConfig config_;
  torch::nn::Embedding src_embed_{nullptr}, tgt_embed_{nullptr};
  torch::nn::Embedding src_positions_{nullptr}, tgt_positions_{nullptr};  ///< learned positions only
  torch::nn::ModuleList encoder_{nullptr}, decoder_{nullptr};  ///< registered layer lists
  std::vector<TransformerEncoderLayer> encoder_layers_;  ///< the same layers, typed
  std::vector<TransformerDecoderLayer> decoder_layers_;
  torch::nn::LayerNorm encoder_norm_{nullptr}, decoder_norm_{nullptr};  ///< pre-norm only
  Linear output_{nullptr};  ///< untied output layer
  TiedProjection tied_output_;  ///< x·Eᵀ + output_bias_ (tie_embeddings), int8 after set_int8
  at::Tensor output_bias_;             ///< tied output layer bias [V]
};

}  // namespace nmt::models
