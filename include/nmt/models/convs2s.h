#pragma once
/// @file convs2s.h
/// The convolutional sequence-to-sequence model, ConvS2S (Gehring, Auli, Grangier, Yarats,
/// Dauphin 2017, "Convolutional Sequence to Sequence Learning"), as in the authors' fairseq
/// `fconv` implementation.
///
/// Encoder: e_j = token embedding + learned position embedding (dropout) → linear E → H →
/// N × [dropout, zero the padded positions, 1-D convolution of width k with a gated linear unit
/// (GLU, Dauphin et al. 2017), residual (x + conv(x))·√0.5] → linear H → E: the outputs z_j.
/// Decoder: g_i = embedding + position (dropout) → linear E → H → M × [dropout, causal
/// convolution of width k (it sees positions i − k + 1 .. i) with a GLU, multi-step attention,
/// residual ·√0.5] → linear H → E → dropout → output layer E → V (optionally tied to the target
/// embedding).
/// Multi-step attention (section 3.3), in every decoder layer: d_i = (W_d h_i + b_d + g_i)·√0.5;
/// a_ij = softmax_j(d_i · z_j) over real source positions; c_i = √m · Σ_j a_ij v_j with values
/// v_j = (z_j + e_j)·√0.5 and m the real source length (the paper's m·√(1/m) scaling, so the
/// variance of c_i does not depend on the length); the layer output is
/// (W_o c_i + b_o + h_i)·√0.5.
/// Every linear layer and convolution is weight-normalised (Salimans & Kingma 2016) and
/// initialised as in section 3.5: embeddings N(0, 0.1²), layers N(0, (1 − p)/n) on n inputs
/// with dropout p, N(0, 4(1 − p)/n) before a GLU. The gradient into the encoder output is scaled
/// by 1/(2M) (section 3.4: the encoder feeds M attention mechanisms).
///
/// Notation: B batch rows, S source length, T target length, E = model.embed_dim,
/// H = model.hidden_size (convolution channels), k = model.kernel_width, N / M =
/// model.encoder_layers / decoder_layers, V vocabulary size.
///
/// Padding never changes an output: padded source positions are zeroed before every encoder
/// convolution (so they read like the zeros beyond the sentence end) and get zero attention.
/// Incremental decoding keeps, per decoder layer, the last k − 1 inputs of its convolution in
/// ConvS2SDecoderState (never on the modules), so a step computes one position per layer.
#include <memory>
#include <utility>
#include <vector>

#include <torch/nn/modules/embedding.h>

#include "nmt/models/int8.h"
#include "nmt/models/seq2seq.h"

namespace nmt::models {

/// A weight-normalised linear layer (Salimans & Kingma 2016): W = g · v / ‖v‖, one length g_o
/// per output unit o and ‖v‖ the L2 norm of v's row o, so direction and length are learned
/// apart. Initialisation: v ~ N(0, std²), g = ‖v‖ (W = v at the start), bias 0.
class WeightNormLinearImpl : public torch::nn::Module {
 public:
  WeightNormLinearImpl(int64_t in, int64_t out, double std);
  /// The effective weight g · v / ‖v‖, [out, in].
  at::Tensor weight() const;
  /// The bias [out].
  const at::Tensor& bias() const { return bias_; }
  /// x [..., in] → [..., out].
  at::Tensor forward(const at::Tensor& x);

 private:
  at::Tensor v_, g_, bias_;  ///< [out, in], [out], [out]
};
TORCH_MODULE(WeightNormLinear);

/// A 1-D convolution over time of width k from H to 2H channels followed by a gated linear unit:
/// [A; B] = conv(x), output A ⊗ σ(B) (H channels). The convolution is a weight-normalised linear
/// layer over each window of k positions (channels-major: weight [2H, H·k] is a Conv1d weight
/// [2H, H, k], flattened), so the teacher-forced pass and one incremental step compute it alike.
class ConvGluImpl : public torch::nn::Module {
 public:
  /// std: of the initial weights (the paper's √(4(1 − p)/(k·H))).
  ConvGluImpl(int64_t channels, int64_t kernel_width, double std);
  /// padded [B, T + k − 1, H]: the input with its k − 1 positions of context (zeros, or inputs
  /// cached from earlier steps) → [B, T, H]; output t sees padded positions t .. t + k − 1.
  at::Tensor forward(const at::Tensor& padded);

 private:
  int64_t kernel_width_;
  WeightNormLinear conv_{nullptr};  ///< [2H, H·k]
};
TORCH_MODULE(ConvGlu);

/// One encoder layer: dropout, padded positions zeroed, a centred convolution (⌊(k−1)/2⌋ zeros
/// on the left, ⌊k/2⌋ on the right) with a GLU, and the residual (x + conv(x))·√0.5.
class ConvS2SEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit ConvS2SEncoderLayerImpl(const ModelConfig& config);
  /// x [B, S, H]; keep [B, S, 1] (1 on real tokens, 0 on padding, x's dtype) → [B, S, H].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& keep);

 private:
  int64_t kernel_width_;
  double dropout_;
  ConvGlu conv_{nullptr};
};
TORCH_MODULE(ConvS2SEncoderLayer);

/// What the decoder layers attend over, computed once per source batch.
struct ConvS2SMemory {
  at::Tensor keys;       ///< [B, S, E] encoder outputs z_j (zero on padding)
  at::Tensor values;     ///< [B, S, E] (z_j + e_j)·√0.5 (zero on padding)
  at::Tensor src_bias;   ///< [B, 1, S]: 0 on real source tokens, −∞ on padding
  at::Tensor src_scale;  ///< [B, 1, 1]: √m, m = the row's real source length
};

/// One decoder layer: dropout, a causal convolution with a GLU, multi-step attention, and the
/// residual connection scaled by √0.5.
class ConvS2SDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit ConvS2SDecoderLayerImpl(const ModelConfig& config);
  /// x [B, T, H] holds the T positions following those whose convolution inputs are in
  /// `context` [B, k − 1, H] (zeros before the first position); `context` is replaced by the
  /// last k − 1 inputs. target_embedding [B, T, E] is g_i. `weights`, when non-null, receives
  /// the attention [B, T, S] (exactly zero on padding). Returns [B, T, H].
  at::Tensor forward(const at::Tensor& x, at::Tensor& context, const at::Tensor& target_embedding,
                     const ConvS2SMemory& memory, at::Tensor* weights = nullptr);

 private:
  double dropout_;
  ConvGlu conv_{nullptr};
  WeightNormLinear attn_in_{nullptr};   ///< W_d: H → E
  WeightNormLinear attn_out_{nullptr};  ///< W_o: E → H
};
TORCH_MODULE(ConvS2SDecoderLayer);

/// Decoder state for incremental decoding. Rows are batch entries (sentence × beam); `select`
/// reorders every tensor along dim 0, so reordered beams carry their own convolution inputs.
struct ConvS2SDecoderState : DecoderState {
  /// One per decoder layer, [B, k − 1, H]: the last k − 1 inputs of its convolution (zeros
  /// before the first target position). Its size never grows: a step costs one position.
  std::vector<at::Tensor> contexts;
  ConvS2SMemory memory;
  int64_t position = 0;  ///< target positions decoded so far (the next token's position)
  std::unique_ptr<DecoderState> select(const at::Tensor& rows) const override;
};

/// ConvS2S as a Seq2Seq model (model.type: convs2s).
class ConvS2SSeq2SeqImpl : public Seq2SeqImpl {
 public:
  /// Throws ConfigError when share_embeddings is set with different source and target
  /// vocabulary sizes, or dropout is 1 (the initialisation scales by 1 − dropout). Positions
  /// are learned, kMaxLearnedPositions (embeddings.h) of them on each side.
  ConvS2SSeq2SeqImpl(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab);
  /// Teacher forcing; `attention` is the decoder layers' attention averaged over layers [B, T, S].
  ForwardOutput forward(const data::Batch& batch) override;
  /// Encodes src [B, S] into keys and values; every layer's convolution context starts at zero.
  std::unique_ptr<DecoderState> start(const at::Tensor& src) override;
  /// One target position for every row, from the cached convolution inputs; `attention` is the
  /// decoder layers' attention averaged over layers [B, S].
  StepOutput step(const at::Tensor& prev, DecoderState& state) override;
  void set_int8(bool on) override;

 private:
  /// src [B, S] → the initial decoder state: memory and zero contexts.
  std::unique_ptr<ConvS2SDecoderState> encode(const at::Tensor& src);
  /// Decoder over the next T target tokens tgt [B, T] (positions state.position ...) up to the
  /// output layer, advancing the state. Returns the output layer's input [B, T, E] and the
  /// layer-averaged attention [B, T, S].
  std::pair<at::Tensor, at::Tensor> decode_hidden(const at::Tensor& tgt, ConvS2SDecoderState& state);
  /// The output layer applied to its input hidden [B, T, E] → logits [B, T, V].
  at::Tensor output_logits(const at::Tensor& hidden);
  /// The output layer and its input hidden [B, T, E] for the training loss.
  OutputLayerInput output_layer(const at::Tensor& hidden);
  /// Token plus learned position embeddings, with dropout: tokens [B, L] at positions
  /// start .. start + L − 1 → [B, L, E].
  at::Tensor embed(const at::Tensor& tokens, torch::nn::Embedding& table, torch::nn::Embedding& positions,
                   int64_t start);

  ModelConfig config_;
  torch::nn::Embedding src_embed_{nullptr}, tgt_embed_{nullptr};
  torch::nn::Embedding src_positions_{nullptr}, tgt_positions_{nullptr};
  WeightNormLinear encoder_in_{nullptr}, encoder_out_{nullptr};  ///< E → H, H → E
  WeightNormLinear decoder_in_{nullptr}, decoder_out_{nullptr};  ///< E → H, H → E
  std::vector<ConvS2SEncoderLayer> encoder_layers_;  ///< registered as the ModuleLists encoder, decoder
  std::vector<ConvS2SDecoderLayer> decoder_layers_;
  WeightNormLinear output_{nullptr};  ///< untied output layer E → V
  TiedProjection tied_output_;  ///< x·Eᵀ + output_bias_ (tie_embeddings), int8 after set_int8
  at::Tensor output_bias_;            ///< tied output layer bias [V]
};

}  // namespace nmt::models
