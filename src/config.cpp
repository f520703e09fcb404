#include "nmt/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

namespace nmt {
namespace {

/// A YAML map key as a name; a key that is not a plain scalar (e.g. `? {a: 1}`) is a ConfigError.
std::string key_name(const YAML::Node& key, const std::string& origin, const std::string& where) {
  if (!key.IsScalar()) throw ConfigError(origin + ": a key " + where + " is not a plain name (line " +
                                         std::to_string(key.Mark().line + 1) + ")");
  return key.Scalar();
}

// ---- enum names, one table each ------------------------------------------------------------
template <class E> using Names = std::vector<std::pair<const char*, E>>;
const Names<ModelType> kModelTypes{
    {"rnn", ModelType::Rnn}, {"transformer", ModelType::Transformer}, {"convs2s", ModelType::ConvS2S}};
const Names<RnnCell> kCells{{"lstm", RnnCell::Lstm}, {"gru", RnnCell::Gru}};
const Names<AttentionType> kAttentions{{"bahdanau", AttentionType::Bahdanau},
                                       {"luong", AttentionType::Luong}};
const Names<AttentionScore> kScores{
    {"dot", AttentionScore::Dot}, {"general", AttentionScore::General}, {"concat", AttentionScore::Concat}};
const Names<AttentionWindow> kWindows{{"global", AttentionWindow::Global},
                                      {"local-m", AttentionWindow::LocalM},
                                      {"local-p", AttentionWindow::LocalP}};
const Names<AttentionMode> kAttentionModes{{"soft", AttentionMode::Soft},
                                           {"hard", AttentionMode::Hard},
                                           {"variational", AttentionMode::Variational}};
const Names<HardEval> kHardEvals{{"expected", HardEval::Expected}, {"argmax", HardEval::Argmax}};
const Names<VariationalMode> kVariationalModes{
    {"enum", VariationalMode::Enum},
    {"sample", VariationalMode::Sample},
    {"sum-and-sample", VariationalMode::SumAndSample},
    {"exact", VariationalMode::Exact}};
const Names<LrSchedule> kSchedules{
    {"constant", LrSchedule::Constant}, {"plateau", LrSchedule::Plateau}, {"noam", LrSchedule::Noam}};
const Names<StopMetric> kMetrics{
    {"bleu", StopMetric::Bleu}, {"perplexity", StopMetric::Perplexity}, {"elbo", StopMetric::Elbo}};
const std::vector<std::string> kVocabTypes{"unigram", "bpe"};
const std::vector<std::string> kPrecisions{"fp32", "bf16", "auto"};

template <class E> std::string choices(const Names<E>& names) {
  std::string out;
  for (auto& [n, e] : names) out += (out.empty() ? "" : " | ") + std::string(n);
  return out;
}

/// Range constraint for numbers: lo <= x <= hi (or lo < x when open_lo).
struct Range {
  double lo, hi;
  bool open_lo = false;
};
const Range kPositive{0, 1e18, true};
const Range kNonNegative{0, 1e18};
const Range kProbability{0, 1};

std::string describe(const Range& r) {
  std::ostringstream s;
  if (r.hi >= 1e18) s << (r.open_lo ? "> " : ">= ") << r.lo;
  else s << "in " << (r.open_lo ? "(" : "[") << r.lo << ", " << r.hi << "]";
  return s.str();
}

// ---- visitor: read a YAML map into a section ------------------------------------------------
class Reader {
 public:
  Reader(const YAML::Node& node, std::string origin, std::string section)
      : node_(node), origin_(std::move(origin)), section_(std::move(section)) {}

  template <class T> void operator()(const char* key, T& value, Range range = {-1e18, 1e18}) {
    seen_.insert(key);
    YAML::Node v = node_[key];
    if (!v) return;
    if (!v.IsScalar()) fail(key, "a scalar");
    if constexpr (std::is_same_v<T, bool>) {
      if (!YAML::convert<bool>::decode(v, value)) fail(key, "true or false", v.Scalar());
    } else if constexpr (std::is_same_v<T, std::string>) {
      value = v.Scalar();
    } else {
      T parsed{};
      if (!YAML::convert<T>::decode(v, parsed))
        fail(key, std::is_integral_v<T> ? "an integer" : "a number", v.Scalar());
      double d = static_cast<double>(parsed);
      if (std::isnan(d)) fail(key, "a number, not NaN", v.Scalar());  // YAML's .nan passes every comparison below
      if (d < range.lo || d > range.hi || (range.open_lo && d == range.lo))
        fail(key, "a value " + describe(range), v.Scalar());
      value = parsed;
    }
  }
  template <class E> void choice(const char* key, E& value, const Names<E>& names) {
    seen_.insert(key);
    YAML::Node v = node_[key];
    if (!v) return;
    std::string s = v.IsScalar() ? v.Scalar() : "";
    for (auto& [n, e] : names)
      if (s == n) return void(value = e);
    fail(key, "one of " + choices(names), s);
  }
  void choice(const char* key, std::string& value, const std::vector<std::string>& names) {
    seen_.insert(key);
    YAML::Node v = node_[key];
    if (!v) return;
    std::string s = v.IsScalar() ? v.Scalar() : "";
    if (std::find(names.begin(), names.end(), s) == names.end()) {
      std::string all;
      for (auto& n : names) all += (all.empty() ? "" : " | ") + n;
      fail(key, "one of " + all, s);
    }
    value = s;
  }
  /// After visiting: every key in the YAML map must be a known field.
  void reject_unknown() const {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const std::string k = key_name(it->first, origin_, "in section '" + section_ + "'");
      if (!seen_.count(k)) {
        std::string known;
        for (auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
        throw ConfigError(origin_ + ": unknown key '" + section_ + "." + k + "' (known keys in '" +
                          section_ + "': " + known + ")");
      }
    }
  }

 private:
  [[noreturn]] void fail(const char* key, const std::string& expected, const std::string& got = "") const {
    throw ConfigError(origin_ + ": key '" + section_ + "." + key + "' expects " + expected +
                      (got.empty() ? "" : ", got '" + got + "'"));
  }
  const YAML::Node& node_;
  std::string origin_, section_;
  std::set<std::string> seen_;
};

// ---- visitor: write a section as YAML -------------------------------------------------------
class Writer {
 public:
  explicit Writer(YAML::Emitter& out) : out_(out) {}
  template <class T> void operator()(const char* key, const T& value, Range = {}) {
    out_ << YAML::Key << key << YAML::Value;
    if constexpr (std::is_same_v<T, double>) {
      std::ostringstream s;
      s.precision(10);
      s << value;
      std::string text = s.str();
      if (text.find_first_of(".e") == std::string::npos) text += ".0";
      out_ << text;
    } else if constexpr (std::is_same_v<T, std::string>) {
      out_ << YAML::DoubleQuoted << value;
    } else {
      out_ << value;
    }
  }
  template <class E> void choice(const char* key, const E& value, const Names<E>& names) {
    for (auto& [n, e] : names)
      if (e == value) out_ << YAML::Key << key << YAML::Value << n;
  }
  void choice(const char* key, const std::string& value, const std::vector<std::string>&) {
    out_ << YAML::Key << key << YAML::Value << value;
  }

 private:
  YAML::Emitter& out_;
};

template <class Fn> void for_each_section(Config& c, Fn&& fn) {
  fn("data", c.data);
  fn("model", c.model);
  fn("train", c.train);
  fn("search", c.search);
}

void read_into(Config& config, const YAML::Node& root, const std::string& origin) {
  if (!root || root.IsNull()) return;
  if (!root.IsMap()) throw ConfigError(origin + ": expected a YAML map of sections (data, model, train, search)");
  std::set<std::string> sections;
  for_each_section(config, [&](const char* name, auto& section) {
    sections.insert(name);
    YAML::Node node = root[name];
    if (!node || node.IsNull()) return;
    if (!node.IsMap()) throw ConfigError(origin + ": section '" + name + "' must be a map of keys");
    Reader r(node, origin, name);
    section.visit(r);
    r.reject_unknown();
  });
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string k = key_name(it->first, origin, "at the top level");
    if (!sections.count(k))
      throw ConfigError(origin + ": unknown section '" + k + "' (expected data, model, train, search)");
  }
}

// The embedded default: configs/multi30k_rnn.yaml, copied in by CMake at build time.
const char* kDefaultYaml =
#include "nmt/default_config.inc"
    ;

}  // namespace

template <class V> void DataConfig::visit(V& v) {
  v("train_src", train_src);
  v("train_tgt", train_tgt);
  v("valid_src", valid_src);
  v("valid_tgt", valid_tgt);
  v("test_src", test_src);
  v("test_tgt", test_tgt);
  v("max_len", max_len, kPositive);
  v.choice("vocab_type", vocab_type, kVocabTypes);
  v("vocab_size", vocab_size, Range{8, 1e7});
  v("joint_vocab", joint_vocab);
  v("character_coverage", character_coverage, Range{0.9, 1.0});
  v("spm_src", spm_src);
  v("spm_tgt", spm_tgt);
  v("batch_tokens", batch_tokens, kPositive);
}

template <class V> void AttentionConfig::visit(V& v) {
  v.choice("attention", type, kAttentions);
  v.choice("attention_score", score, kScores);
  v("input_feeding", input_feeding);
  v.choice("attention_window", window, kWindows);
  v("window_size", window_size, Range{1, 1e6});
  v.choice("attention_mode", mode, kAttentionModes);
  v.choice("hard_eval", hard_eval, kHardEvals);
  v.choice("variational_mode", variational_mode, kVariationalModes);
  v("variational_top_k", variational_top_k, kNonNegative);
  v("inference_layers", inference_layers, kPositive);
  v("inference_hidden", inference_hidden, kNonNegative);
  v("coverage_penalty", coverage_penalty, kNonNegative);
  v("reinforce_entropy", reinforce_entropy, kNonNegative);
  v("reinforce_baseline_decay", reinforce_baseline_decay, Range{0, 1, false});
}

template <class V> void ModelConfig::visit(V& v) {
  v.choice("type", type, kModelTypes);
  v("embed_dim", embed_dim, kPositive);
  v("hidden_size", hidden_size, kPositive);
  v("encoder_layers", encoder_layers, kPositive);
  v("decoder_layers", decoder_layers, kPositive);
  v("dropout", dropout, Range{0, 1, false});
  v("tie_embeddings", tie_embeddings);
  v("share_embeddings", share_embeddings);
  v.choice("cell", cell, kCells);
  attention.visit(v);
  v("heads", heads, kPositive);
  v("ff_dim", ff_dim, kPositive);
  v("pre_norm", pre_norm);
  v("learned_positions", learned_positions);
  v("attention_dropout", attention_dropout, kProbability);
  v("activation_dropout", activation_dropout, kProbability);
  v("kernel_width", kernel_width, Range{1, 1024});
}

template <class V> void TrainConfig::visit(V& v) {
  v("model_dir", model_dir);
  v("seed", seed);
  v("threads", threads, kNonNegative);
  v("device", device);
  v.choice("precision", precision, kPrecisions);
  v("lr", lr, kPositive);
  v("beta1", beta1, Range{0, 1, false});
  v("beta2", beta2, Range{0, 1, false});
  v("weight_decay", weight_decay, kNonNegative);
  v("clip_norm", clip_norm, kNonNegative);
  v("label_smoothing", label_smoothing, Range{0, 1, false});
  v.choice("lr_schedule", lr_schedule, kSchedules);
  v("lr_decay", lr_decay, Range{0, 1, true});
  v("lr_patience", lr_patience, kNonNegative);
  v("min_lr", min_lr, kNonNegative);
  v("warmup_steps", warmup_steps, kPositive);
  v("accum_steps", accum_steps, kPositive);
  v("max_epochs", max_epochs, kPositive);
  v("max_steps", max_steps, kNonNegative);
  v("max_time", max_time, kNonNegative);
  v("valid_every", valid_every, kPositive);
  v("save_every", save_every, kNonNegative);
  v("keep_checkpoints", keep_checkpoints, kNonNegative);
  v("ema_decay", ema_decay, kProbability);
  v("log_every", log_every, kPositive);
  v.choice("stop_metric", stop_metric, kMetrics);
  v("patience", patience, kPositive);
  v("target_ppl", target_ppl, kNonNegative);
  v("valid_max_sentences", valid_max_sentences, kNonNegative);
  v("dist_timeout", dist_timeout, kPositive);
  v("dist_bucket_mb", dist_bucket_mb, kPositive);
}

template <class V> void SearchConfig::visit(V& v) {
  v("beam_size", beam_size, kPositive);
  v("length_penalty", length_penalty, kNonNegative);
  v("max_len_a", max_len_a, kNonNegative);
  v("max_len_b", max_len_b, kNonNegative);
  v("batch_tokens", batch_tokens, kPositive);
  v("batch_sentences", batch_sentences, kNonNegative);
}

void apply_overrides(Config& config, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    auto dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq)
      throw ConfigError("--set '" + o + "': expected section.key=value");
    std::string section = o.substr(0, dot), key = o.substr(dot + 1, eq - dot - 1);
    YAML::Node root;
    try {
      root[section][key] = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError("--set '" + o + "': the value is not valid YAML (" + e.msg + ")");
    }
    if (root[section][key].IsNull()) root[section][key] = "";
    read_into(config, root, "--set " + o);
  }
  validate(config);
}

void validate(const Config& c) {
  if (c.train.ema_decay >= 1.0)
    throw ConfigError("train.ema_decay must be below 1 (0 = no moving average), got " + std::to_string(c.train.ema_decay));
  if (c.model.share_embeddings && !c.data.joint_vocab)
    throw ConfigError("model.share_embeddings: true needs data.joint_vocab: true");
  if (c.model.type == ModelType::Rnn && c.model.hidden_size % 2 != 0)
    throw ConfigError("model.hidden_size must be even for the RNN (bidirectional encoder halves)");
  if (c.model.type == ModelType::Transformer && c.model.embed_dim % c.model.heads != 0)
    throw ConfigError("model.embed_dim must be divisible by model.heads");
  if (c.model.type == ModelType::ConvS2S && c.model.dropout >= 1.0)
    throw ConfigError("model.dropout must be below 1 for model.type: convs2s (its initialisation scales the "
                      "weights by 1 - dropout)");
  if (c.model.type != ModelType::Rnn) {
    // The attention options of the RNN would be silently ignored by the other models.
    const std::string type = model_type_name(c.model.type);
    if (c.model.attention.mode != AttentionMode::Soft)
      throw ConfigError("model.attention_mode: hard and variational need model.type: rnn, not " + type);
    if (c.model.attention.coverage_penalty > 0)
      throw ConfigError("model.coverage_penalty needs model.type: rnn, not " + type);
  }
  if (c.model.attention.mode == AttentionMode::Variational) {
    if (c.model.attention.type != AttentionType::Luong)
      throw ConfigError("model.attention_mode: variational needs model.attention: luong (the alignment "
                        "must not feed the decoder RNN)");
    if (c.model.attention.window != AttentionWindow::Global)
      throw ConfigError("model.attention_mode: variational needs model.attention_window: global");
    if (c.model.attention.variational_mode == VariationalMode::SumAndSample && c.model.attention.variational_top_k < 1)
      throw ConfigError("model.variational_mode: sum-and-sample needs model.variational_top_k >= 1 (the "
                        "positions summed exactly)");
    if (c.model.attention.inference_hidden % 2 != 0)
      throw ConfigError("model.inference_hidden must be even (bidirectional RNNs halve it)");
  }
  const bool has_bound = c.model.attention.mode == AttentionMode::Variational &&
                         c.model.attention.variational_mode != VariationalMode::Exact;
  if (c.train.stop_metric == StopMetric::Elbo && !has_bound)
    throw ConfigError("train.stop_metric: elbo needs variational attention with an inference network "
                      "(model.attention_mode: variational, variational_mode other than exact)");
  const std::string& d = c.train.device;
  if (d != "auto" && d != "cpu" && d.rfind("cuda", 0) != 0)
    throw ConfigError("train.device expects cpu | cuda | cuda:N | auto, got '" + d + "'");
}

Config parse_config(const std::string& yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides) {
  Config config;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ": invalid YAML: " + e.what());
  }
  read_into(config, root, origin);
  validate(config);
  apply_overrides(config, overrides);
  return config;
}

Config default_config() { return parse_config(kDefaultYaml, "<default config>"); }

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot open config file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ": invalid YAML: " + e.what());
  }
  Config config;
  read_into(config, root, path);
  validate(config);
  apply_overrides(config, overrides);
  return config;
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Config copy = config;
  for_each_section(copy, [&](const char* name, auto& section) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    Writer w(out);
    section.visit(w);
    out << YAML::EndMap;
  });
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string model_type_name(ModelType type) {
  for (auto& [n, e] : kModelTypes)
    if (e == type) return n;
  return "unknown";
}

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace nmt
