#pragma once
/// @file config.h
/// Typed configuration: parsed once from YAML into plain structs, then no component sees YAML.
/// Priority: built-in defaults < config file < `--set section.key=value` overrides.
/// Every field is declared once, in its section's `visit`, which drives loading, overriding,
/// validation and saving alike.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace nmt {

/// A bad config file, key, type or value; the message names the origin, key and expectation.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// RNN encoder-decoder with attention, the Transformer (Vaswani et al. 2017), or the
/// convolutional ConvS2S (Gehring et al. 2017).
enum class ModelType { Rnn, Transformer, ConvS2S };
enum class RnnCell { Lstm, Gru };
/// RNN attention: Bahdanau et al. 2015 (additive) or Luong et al. 2015 (global).
enum class AttentionType { Bahdanau, Luong };
/// Luong et al. 2015 score functions: h_tᵀh̄_s, h_tᵀW h̄_s, vᵀtanh(W[h_t; h̄_s]).
enum class AttentionScore { Dot, General, Concat };
/// Which source positions an RNN attention may look at (Luong et al. 2015, section 3.2):
/// all of them (global), a window of half-width D around p_t = t (local-m), or around a
/// predicted p_t with a Gaussian weighting (local-p).
enum class AttentionWindow { Global, LocalM, LocalP };
/// How the context vector is formed from the alignment distribution α_t: its expectation
/// (soft), one sampled position (hard, Xu et al. 2015) or a latent alignment trained with
/// an inference network (variational, Deng et al. 2018).
enum class AttentionMode { Soft, Hard, Variational };
/// Context of a hard-attention model at test time: the expectation Σ α h (soft) or the argmax.
enum class HardEval { Expected, Argmax };
/// Training objective of variational attention (Deng et al. 2018): the ELBO with the exact
/// expectation over source positions (enum), the ELBO with one sampled alignment and a
/// REINFORCE gradient (sample), the ELBO with the sum-and-sample estimator: the K most probable
/// positions under q exactly plus one REINFORCE sample from the rest (sum-and-sample; Liu et al.
/// 2019, unbiased, every position gets a gradient), or the exact marginal likelihood
/// log Σ_z p(z) p(y|z) (exact).
enum class VariationalMode { Enum, Sample, SumAndSample, Exact };
enum class LrSchedule { Constant, Plateau, Noam };
/// Validation metric that selects best.pt, drives early stopping and the plateau schedule:
/// BLEU, perplexity, or the ELBO bound on the perplexity (variational attention).
enum class StopMetric { Bleu, Perplexity, Elbo };

struct DataConfig {
  std::string train_src, train_tgt;  ///< training corpus, one sentence per line
  std::string valid_src, valid_tgt;  ///< validation corpus
  std::string test_src, test_tgt;    ///< optional test corpus (scored after training)
  int max_len = 100;                 ///< pairs with more subword tokens on either side are dropped
  std::string vocab_type = "unigram";  ///< SentencePiece model type: unigram | bpe
  int vocab_size = 8000;             ///< SentencePiece vocabulary size (per model)
  bool joint_vocab = true;           ///< one SentencePiece model over source and target text
  double character_coverage = 1.0;   ///< SentencePiece character coverage
  std::string spm_src, spm_tgt;      ///< existing SentencePiece models (empty: train them)
  int batch_tokens = 2000;           ///< token budget per batch (padded, max of src/tgt)
  template <class V> void visit(V& v);
};

/// The RNN's attention: score function, window and mode, with the options of each
/// (models/rnn_attention.h). In YAML these are flat keys of the `model` section.
struct AttentionConfig {
  AttentionType type = AttentionType::Bahdanau;       ///< YAML: attention
  AttentionScore score = AttentionScore::General;     ///< YAML: attention_score (for attention: luong)
  bool input_feeding = true;  ///< feed the attentional vector h̃_{t-1} to the next step
  AttentionWindow window = AttentionWindow::Global;   ///< YAML: attention_window
  int window_size = 10;       ///< local attention half-width D (window [p_t − D, p_t + D])
  AttentionMode mode = AttentionMode::Soft;           ///< YAML: attention_mode
  HardEval hard_eval = HardEval::Expected;            ///< mode hard, at test time
  VariationalMode variational_mode = VariationalMode::Enum;
  /// variational_mode: enum, training only: the expectation runs over the K most probable source
  /// positions under q, renormalised (0 = all positions, the exact expectation);
  /// sum-and-sample: the K positions summed exactly (≥ 1)
  int variational_top_k = 0;
  int inference_layers = 2;   ///< variational q: layers of its own source and target bi-RNNs
  int inference_hidden = 0;   ///< variational q: their size (both directions); 0 = hidden_size
  double coverage_penalty = 0.0;   ///< λ of λ·Σ_i (1 − Σ_t α_ti)² added to the loss (Xu et al. 2015)
  double reinforce_entropy = 0.0;  ///< hard attention: weight of the entropy bonus Σ_t H(α_t)
  double reinforce_baseline_decay = 0.9;  ///< hard attention: moving-average baseline decay
  template <class V> void visit(V& v);
};

struct ModelConfig {
  ModelType type = ModelType::Rnn;
  int embed_dim = 256;        ///< token embedding size (d_model for the Transformer)
  int hidden_size = 512;      ///< RNN hidden size (the encoder uses hidden_size/2 per direction)
  int encoder_layers = 2;
  int decoder_layers = 1;
  double dropout = 0.3;       ///< dropout on embeddings and between layers / on residuals
  bool tie_embeddings = true;      ///< target embedding shares weights with the output layer
  bool share_embeddings = false;   ///< source and target embeddings shared (needs joint_vocab)
  // RNN
  RnnCell cell = RnnCell::Lstm;
  AttentionConfig attention;  ///< the RNN's attention (YAML: the flat keys attention, attention_score, ...)
  // Transformer
  int heads = 4;
  int ff_dim = 1024;
  bool pre_norm = true;            ///< layer norm before (true) or after (false) each sublayer
  bool learned_positions = false;  ///< learned instead of sinusoidal position embeddings
  double attention_dropout = 0.1;
  double activation_dropout = 0.0;
  // ConvS2S
  int kernel_width = 3;            ///< convolution width k (the decoder caches k − 1 inputs per layer)
  template <class V> void visit(V& v);
};

struct TrainConfig {
  std::string model_dir = "runs/model";  ///< checkpoints, vocabularies, resolved config, log
  uint64_t seed = 1;
  int threads = 0;               ///< CPU threads for both OpenBLAS and ATen; 0 = all cores
  std::string device = "auto";   ///< cpu | cuda | cuda:N | auto (CUDA when available)
  std::string precision = "fp32";  ///< fp32 | bf16 | auto (bf16 where the CPU/GPU multiplies it faster; precision.h)
  double lr = 1e-3;              ///< Adam learning rate (peak rate for noam)
  double beta1 = 0.9, beta2 = 0.999;
  double weight_decay = 0.0;
  double clip_norm = 5.0;        ///< gradient L2-norm clipping; 0 disables
  double label_smoothing = 0.0;
  LrSchedule lr_schedule = LrSchedule::Plateau;
  double lr_decay = 0.5;         ///< plateau: factor applied when validation does not improve
  int lr_patience = 1;           ///< plateau: validations without improvement before decay
  double min_lr = 1e-5;
  int warmup_steps = 4000;       ///< noam: linear warm-up updates
  int accum_steps = 1;           ///< batches accumulated per update
  int max_epochs = 30;
  int64_t max_steps = 0;         ///< 0 = unlimited
  double max_time = 0;           ///< wall-clock budget in minutes; 0 = unlimited
  int valid_every = 500;         ///< updates between validations (and at each epoch end)
  int save_every = 0;            ///< updates between writes of last.pt besides validations; 0 = none
  int keep_checkpoints = 0;      ///< keep the last N written last.pt as step-<N>.pt (for averaging); 0 = none
  double ema_decay = 0;          ///< exponential moving average of the weights (train/ema.h) for validation,
                                 ///< best.pt and translation; 0 = none, typical 0.999-0.9999
  int log_every = 100;           ///< updates between log lines
  StopMetric stop_metric = StopMetric::Bleu;  ///< metric that selects the best checkpoint
  int patience = 5;              ///< validations without improvement before early stopping
  double target_ppl = 0;         ///< stop once a validation perplexity is at or below this; 0 = never
  int valid_max_sentences = 0;   ///< score only the first N validation sentences; 0 = all
  // Data-parallel training (several processes; see train/distributed.h)
  double dist_timeout = 1800;    ///< seconds a rank waits for the others (rendezvous, collectives)
  double dist_bucket_mb = 25;    ///< gradient all-reduce bucket size, MB (PyTorch DDP's default)
  template <class V> void visit(V& v);
};

struct SearchConfig {
  int beam_size = 5;             ///< 1 = greedy
  double length_penalty = 1.0;   ///< GNMT α: score / ((5+|y|)/6)^α (Wu et al. 2016)
  double max_len_a = 1.5;        ///< maximum output length a·|x| + b (subword tokens)
  int max_len_b = 10;
  int batch_tokens = 3000;       ///< source-token budget per translation batch
  /// Sentences per translation batch at most (0: no limit). A batch decodes beam_size rows per
  /// sentence, and each row holds a [V] output distribution and its self-attention caches.
  int batch_sentences = 100;
  template <class V> void visit(V& v);
};

struct Config {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  SearchConfig search;
};

/// The built-in default: the Multi30k German→English RNN configuration.
Config default_config();

/// Load `path` over the defaults, then apply overrides of the form "section.key=value".
/// Throws ConfigError naming the file (or "--set"), the key and what was expected, for an
/// unknown section or key, a wrong type, or an out-of-range value.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

/// Parse YAML text (used for the embedded default and for configs stored in checkpoints).
/// `origin` names the text in error messages.
Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides = {});

/// Apply "section.key=value" overrides to `config`. Throws ConfigError.
void apply_overrides(Config& config, const std::vector<std::string>& overrides);

/// Cross-field checks (e.g. share_embeddings needs joint_vocab). Throws ConfigError.
void validate(const Config& config);

/// The complete resolved config as YAML (every key, so a run can be reproduced from it).
std::string to_yaml(const Config& config);

/// The config name of a model type (`rnn`, `transformer`, `convs2s`), as model.type spells it.
std::string model_type_name(ModelType type);

/// Number of threads `threads: 0` resolves to (all cores).
int resolve_threads(int threads);

}  // namespace nmt
