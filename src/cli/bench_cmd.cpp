#include "nmt/cli/bench_cmd.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "nmt/cli/command_list.h"
#include "nmt/cli/model_io.h"
#include "nmt/cli/validators.h"
#include "nmt/config.h"
#include "nmt/data/batching.h"
#include "nmt/data/corpus.h"
#include "nmt/precision.h"
#include "nmt/runtime.h"
#include "nmt/search/translator.h"
#include "nmt/train/schedule.h"
#include "nmt/train/update.h"

namespace nmt::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The GEMM ceilings: n×n products, timed for about this long per precision after a warm-up
// product (on a CPU without bf16 units one emulated bf16 product of this size takes ~0.5 s).
constexpr int64_t kCeilingSize = 1024;
constexpr double kCeilingSeconds = 0.5;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

/// A model being trained for the benchmark, updated exactly as nmt train updates it.
class BenchTrainer {
 public:
  BenchTrainer(const Config& c, models::Seq2Seq model, std::vector<data::Example> examples, Precision precision)
      : config_(c), model_(std::move(model)), examples_(std::move(examples)), precision_(precision), schedule_(c.train),
        optimizer_(train::make_optimizer(*model_, c.train)) {
    batches_ = data::make_token_batches(examples_, c.data.batch_tokens, true, c.train.seed);
    model_->train();
  }

  /// One update (train.accum_steps batches); returns its target (non-pad) tokens.
  int64_t update() {
    std::vector<data::Batch> batches;
    for (int64_t i = 0; i < config_.train.accum_steps; ++i) {
      std::vector<const data::Example*> rows;
      for (size_t r : batches_[next_++ % batches_.size()]) rows.push_back(&examples_[r]);
      batches.push_back(data::make_batch(rows, c10::kCPU));
    }
    return train::train_update(*model_, *optimizer_, batches, config_.train, schedule_.rate(++step_), nullptr,
                               precision_)
        .tgt_tokens;
  }

 private:
  Config config_;
  models::Seq2Seq model_;
  std::vector<data::Example> examples_;
  Precision precision_;
  std::vector<std::vector<size_t>> batches_;
  size_t next_ = 0;
  int64_t step_ = 0;
  train::LrSchedule schedule_;
  std::unique_ptr<train::FusedAdam> optimizer_;
};

/// Self and total CPU time of one operator name in a profile.
struct OpTime {
  std::string name;
  int64_t calls = 0;
  double self_us = 0, total_us = 0;
  /// Calls and self time per list of input shapes (only when the profile recorded shapes).
  std::map<std::string, std::pair<int64_t, double>> by_shapes;
};

/// "[2500, 256], [256]": an operator call's input shapes (scalars and undefined tensors: []).
std::string shapes_text(const std::vector<std::vector<int64_t>>& shapes) {
  std::string out;
  for (const auto& shape : shapes) {
    if (!out.empty()) out += ", ";
    out += fmt::format("[{}]", fmt::join(shape, ", "));
  }
  return out;
}

struct Profile {
  std::vector<OpTime> ops;   ///< sorted by self time, largest first
  double total_self_us = 0;  ///< sum of every operator's self time
  uint64_t matmul_flops = 0; ///< FLOPs of mm, addmm, bmm and baddbmm
};

/// Pairs push/pop events per thread and attributes each operator's time minus its children's.
Profile summarise(torch::autograd::profiler::thread_event_lists& lists) {
  using torch::autograd::profiler::EventKind;
  using torch::autograd::profiler::LegacyEvent;
  struct Open {
    LegacyEvent* push;
    double children_us = 0;
  };
  static const std::set<std::string> kMatmuls{"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"};
  std::map<std::string, OpTime> by_name;
  Profile p;
  for (auto& events : lists) {
    std::vector<Open> stack;
    for (auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        stack.push_back({&e});
      } else if (e.kind() == EventKind::PopRange) {
        auto it = std::find_if(stack.rbegin(), stack.rend(), [&](const Open& o) { return o.push->handle() == e.handle(); });
        if (it == stack.rend()) continue;
        const size_t depth = stack.size() - 1 - (it - stack.rbegin());
        Open open = stack[depth];
        stack.resize(depth);
        const double total = open.push->cpuElapsedUs(e);
        auto& op = by_name[open.push->name()];
        op.name = open.push->name();
        ++op.calls;
        op.total_us += total;
        op.self_us += total - open.children_us;
        if (!open.push->shapes().empty()) {
          auto& by_shape = op.by_shapes[shapes_text(open.push->shapes())];
          ++by_shape.first;
          by_shape.second += total - open.children_us;
        }
        p.total_self_us += total - open.children_us;
        if (kMatmuls.count(op.name)) p.matmul_flops += open.push->flops();
        if (!stack.empty()) stack.back().children_us += total;
      }
    }
  }
  for (auto& [name, op] : by_name) p.ops.push_back(op);
  std::sort(p.ops.begin(), p.ops.end(), [](const OpTime& a, const OpTime& b) { return a.self_us > b.self_us; });
  return p;
}

/// Runs `work` under the LibTorch (legacy) profiler. With `flops`, input shapes are recorded
/// and matrix-product FLOPs counted (slower: use it for the count, not for the times).
template <class Work>
Profile profiled(bool flops, Work work) {
  namespace prof = torch::autograd::profiler;
  prof::ProfilerConfig config(prof::ProfilerState::CPU, /*report_input_shapes=*/flops,
                              /*profile_memory=*/false, /*with_stack=*/false, /*with_flops=*/flops);
  prof::enableProfilerLegacy(config);
  work();
  auto lists = prof::disableProfilerLegacy();
  return summarise(lists);
}

/// `steps` updates, profiled; their target tokens and seconds in `tokens` and `seconds`.
Profile profile_updates(BenchTrainer& trainer, int steps, bool flops, int64_t& tokens, double& seconds) {
  return profiled(flops, [&] {
    tokens = 0;
    auto t = Clock::now();
    for (int i = 0; i < steps; ++i) tokens += trainer.update();
    seconds = seconds_since(t);
  });
}

struct Translation {
  int64_t sentences = 0, tokens = 0;  ///< tokens: output subwords, EOS excluded
  double seconds = 0;
};

Translation time_translation(const search::Translator& translator, const std::vector<std::string>& lines) {
  auto ids = translator.src_vocab().encode_batch(lines);
  translator.model().eval();
  torch::NoGradGuard no_grad;
  auto t = Clock::now();
  auto hyps = translator.translate_ids(ids);
  Translation r;
  r.seconds = seconds_since(t);
  r.sentences = static_cast<int64_t>(lines.size());
  for (const auto& h : hyps) r.tokens += static_cast<int64_t>(h.tokens.size());
  return r;
}

std::vector<std::string> first_lines(const std::string& path, int n) {
  auto lines = data::read_lines(path);
  if (lines.size() > static_cast<size_t>(n)) lines.resize(n);
  if (lines.empty()) throw std::runtime_error(path + ": no sentence to translate");
  return lines;
}

void print_profile(std::ostream& out, const Profile& p, int top, const std::string& what) {
  out << fmt::format("profile of {}: top {} operators by self CPU time\n", what, top);
  out << fmt::format("  {:<42} {:>8} {:>11} {:>7} {:>11}\n", "operator", "calls", "self ms", "self %", "total ms");
  for (int i = 0; i < top && i < static_cast<int>(p.ops.size()); ++i) {
    const auto& op = p.ops[i];
    out << fmt::format("  {:<42} {:>8} {:>11.1f} {:>6.1f}% {:>11.1f}\n", op.name.substr(0, 42), op.calls,
                       op.self_us / 1e3, 100.0 * op.self_us / std::max(p.total_self_us, 1.0), op.total_us / 1e3);
  }
}

/// For each of the `top` operators of a profile that recorded input shapes, its `per_op`
/// heaviest lists of input shapes by self time.
void print_shapes(std::ostream& out, const Profile& p, int top, int per_op, const std::string& what) {
  out << fmt::format("input shapes of the top {} operators of {} (self ms, calls; shapes recorded, so every call "
                     "is slower)\n", top, what);
  for (int i = 0; i < top && i < static_cast<int>(p.ops.size()); ++i) {
    const auto& op = p.ops[i];
    std::vector<std::pair<std::string, std::pair<int64_t, double>>> shapes(op.by_shapes.begin(), op.by_shapes.end());
    std::sort(shapes.begin(), shapes.end(), [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
    out << fmt::format("  {} ({:.1f} ms)\n", op.name, op.self_us / 1e3);
    for (int k = 0; k < per_op && k < static_cast<int>(shapes.size()); ++k) {
      out << fmt::format("    {:>9.1f} {:>6}  {}\n", shapes[k].second.second / 1e3, shapes[k].second.first, shapes[k].first);
    }
  }
}

}  // namespace

void run_bench(const BenchOptions& o, std::ostream& out) {
  Config c = load_config(o.config_file, o.overrides);
  const int threads = setup_threads(o.threads > 0 ? o.threads : c.train.threads);
  const std::string model_type = model_type_name(c.model.type);

  const auto ceilings = measure_gemm(c10::kCPU, kCeilingSize, kCeilingSeconds);
  const double fp32_ceiling = ceilings.fp32_gflops, bf16_ceiling = ceilings.bf16_gflops;
  const std::string feature = cpu_bf16_feature();
  // auto decides on the ceilings just measured, not on a probe of its own.
  const auto choice = choose_precision(c.train.precision, c10::kCPU, "train.precision", feature,
                                       [&] { return GemmCeilings{fp32_ceiling, bf16_ceiling}; });
  const Precision precision = choice.precision;
  const double ceiling = precision == Precision::kBf16 ? bf16_ceiling : fp32_ceiling;
  auto [src_vocab, tgt_vocab] = train::prepare_vocabs(
      c, o.work_dir, fmt::format("spm_{}_{}", c.data.vocab_type, c.data.vocab_size), /*reuse=*/true);
  auto examples = data::encode_corpus(data::read_parallel(c.data.train_src, c.data.train_tgt), src_vocab,
                                      tgt_vocab, c.data.max_len);
  torch::manual_seed(c.train.seed);
  auto model = models::make_model(c.model, src_vocab.size(), tgt_vocab.size());
  int64_t params = 0;
  for (auto& p : model->parameters()) params += p.numel();
  out << fmt::format("nmt bench: {} ({}, {:.2f}M parameters, vocabulary {}), {} threads\n", o.config_file,
                     model_type, params / 1e6, tgt_vocab.size(), threads);
  // How the workers wait (nmt/openmp_env.h): libgomp and OpenBLAS read these when they were loaded.
  const auto env_or_unset = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value ? value : "unset");
  };
  out << fmt::format("CPU: {} (bf16 units: {}); memory allocator: {}; OpenMP: OMP_WAIT_POLICY={} GOMP_SPINCOUNT={}; "
                     "OPENBLAS_THREAD_TIMEOUT={}\n",
                     cpu_model_name(), feature.empty() ? "none" : feature, memory_allocator(),
                     env_or_unset("OMP_WAIT_POLICY"), env_or_unset("GOMP_SPINCOUNT"),
                     env_or_unset("OPENBLAS_THREAD_TIMEOUT"));
  out << fmt::format("GEMM ceilings (at::mm, n = {}, {} s each): fp32 {:.1f} GFLOP/s, bf16 {:.1f} GFLOP/s "
                     "({:.2f}x)\n", kCeilingSize, kCeilingSeconds, fp32_ceiling, bf16_ceiling, bf16_ceiling / fp32_ceiling);
  out << fmt::format("precision: {}\n", choice.reason);

  BenchTrainer trainer(c, model, std::move(examples), precision);
  for (int i = 0; i < o.warmup; ++i) trainer.update();
  int64_t tokens = 0;
  auto t = Clock::now();
  for (int i = 0; i < o.steps; ++i) tokens += trainer.update();
  const double train_s = seconds_since(t);
  const double train_tps = tokens / train_s;
  out << fmt::format("training: {} updates (after {} warm-up), {} target tokens in {:.2f} s: {:.0f} target tokens/s "
                     "(data.batch_tokens {}, accum_steps {})\n",
                     o.steps, o.warmup, tokens, train_s, train_tps, c.data.batch_tokens, c.train.accum_steps);

  int64_t profiled_tokens = 0;
  double profiled_s = 0;
  const auto counted = profile_updates(trainer, o.profile_steps, /*flops=*/true, profiled_tokens, profiled_s);
  const double flops_per_token = profiled_tokens > 0 ? double(counted.matmul_flops) / profiled_tokens : 0.0;
  const auto profile = profile_updates(trainer, o.profile_steps, /*flops=*/false, profiled_tokens, profiled_s);
  const double achieved = flops_per_token * train_tps / 1e9;
  out << fmt::format("training FLOPs (matrix products, forward + backward, profiled): {:.1f} MFLOP per target token\n",
                     flops_per_token / 1e6);
  out << fmt::format("achieved in training: {:.1f} GFLOP/s = {:.1f}% of the {} GEMM ceiling\n", achieved,
                     100.0 * achieved / ceiling, precision_name(precision));
  const double rss_train = peak_rss_mb();

  // Translation: a trained model when given, else the model just trained for a few updates.
  const std::string src_file = !o.src_file.empty() ? o.src_file : !c.data.test_src.empty() ? c.data.test_src : c.data.valid_src;
  auto lines = first_lines(src_file, o.sentences);
  auto search_config = c.search;
  search_config.beam_size = o.beam;
  Translation tr;
  Profile decoding_profile;
  const std::vector<std::string> profiled_lines(lines.begin(), lines.begin() + std::min<size_t>(lines.size(), o.profile_sentences));
  auto time_and_profile = [&](const search::Translator& translator) {
    tr = time_translation(translator, lines);
    // With --shapes the decoding profile records input shapes too (every call is then slower).
    if (!profiled_lines.empty())
      decoding_profile = profiled(o.shapes > 0, [&] { time_translation(translator, profiled_lines); });
  };
  std::string which;
  if (!o.model_dir.empty()) {
    auto loaded = load_model(o.model_dir, threads);
    loaded.translator.config() = search_config;
    loaded.translator.set_precision(precision);
    time_and_profile(loaded.translator);
    which = fmt::format("trained model {} (step {})", o.model_dir, loaded.checkpoint.state.step);
  } else {
    // A freshly initialised model: it almost never emits EOS, so every hypothesis runs to the
    // maximum length (a few updates would instead teach it to stop at once, timing nothing).
    torch::manual_seed(c.train.seed);
    auto untrained = models::make_model(c.model, src_vocab.size(), tgt_vocab.size());
    search::Translator translator(untrained, src_vocab, tgt_vocab, search_config, c10::kCPU);
    translator.set_precision(precision);
    time_and_profile(translator);
    which = fmt::format("untrained model: outputs run to the maximum length {}·|x| + {}", c.search.max_len_a,
                        c.search.max_len_b);
  }
  out << fmt::format("translation (beam {}, first {} sentences of {}, {}): {} output tokens in {:.2f} s: "
                     "{:.0f} target tokens/s, {:.1f} sentences/s\n",
                     o.beam, tr.sentences, src_file, which, tr.tokens, tr.seconds, tr.tokens / tr.seconds,
                     tr.sentences / tr.seconds);
  const double rss = peak_rss_mb();
  out << fmt::format("peak resident memory: {:.0f} MB (after training: {:.0f} MB)\n", rss, rss_train);
  print_profile(out, profile, o.top, fmt::format("{} training updates", o.profile_steps));
  out << fmt::format("  (profiled updates ran at {:.0f} target tokens/s against {:.0f} unprofiled: the profiler's cost "
                     "per operator call inflates the many small operators)\n",
                     profiled_tokens / profiled_s, train_tps);
  // Time the profiler saw no operator for: between calls, and loops no operator records.
  out << fmt::format("  (the operators' self times add up to {:.0f} ms of the profiled updates' {:.0f} ms: {:.1f}% "
                     "outside any recorded operator)\n",
                     profile.total_self_us / 1e3, profiled_s * 1e3,
                     100.0 * std::max(0.0, 1.0 - profile.total_self_us / 1e6 / std::max(profiled_s, 1e-9)));
  if (o.shapes > 0) print_shapes(out, counted, o.top, o.shapes, fmt::format("{} training updates", o.profile_steps));
  if (!profiled_lines.empty()) {
    const auto what = fmt::format("translating the first {} of those sentences again (beam {})", profiled_lines.size(), o.beam);
    print_profile(out, decoding_profile, o.top, what);
    if (o.shapes > 0) print_shapes(out, decoding_profile, o.top, o.shapes, what);
  }
  out << fmt::format("summary: config={} model={} threads={} train_tgt_tok_s={:.0f} train_mflop_per_tok={:.1f} "
                     "train_gflops={:.1f} precision={} gemm_ceiling_gflops={:.1f} fp32_ceiling_gflops={:.1f} "
                     "bf16_ceiling_gflops={:.1f} ceiling_fraction={:.3f} "
                     "beam={} decode_tgt_tok_s={:.0f} decode_sent_s={:.1f} peak_rss_mb={:.0f}\n",
                     o.config_file, model_type, threads, train_tps, flops_per_token / 1e6,
                     achieved, precision_name(precision), ceiling, fp32_ceiling, bf16_ceiling, achieved / ceiling, o.beam, tr.tokens / tr.seconds,
                     tr.sentences / tr.seconds, rss);
  out << std::flush;
}

void setup_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", command_description("bench"));
  cmd->add_option("-c,--config", o->config_file, "YAML config to benchmark")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", o->overrides, "override a config value: section.key=value (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--work-dir", o->work_dir, "where SentencePiece models are trained once and reused")
      ->capture_default_str();
  cmd->add_option("-m,--model", o->model_dir, "translate with this trained model directory instead")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--src", o->src_file, "source text to translate (default: data.test_src, else data.valid_src)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--warmup", o->warmup, "untimed training updates first")->capture_default_str()->check(non_negative());
  cmd->add_option("--steps", o->steps, "timed training updates")->capture_default_str()->check(positive_integer());
  cmd->add_option("--profile-steps", o->profile_steps, "profiled training updates")->capture_default_str()->check(positive_integer());
  cmd->add_option("--sentences", o->sentences, "sentences to translate")->capture_default_str()->check(positive_integer());
  cmd->add_option("--profile-sentences", o->profile_sentences, "sentences translated once more under the profiler (0: none)")
      ->capture_default_str()->check(non_negative());
  cmd->add_option("-b,--beam", o->beam, "beam size")->capture_default_str()->check(positive_integer());
  cmd->add_option("--threads", o->threads, "CPU threads (default: the config's train.threads)");
  cmd->add_option("--top", o->top, "operators listed in the profile")->capture_default_str()->check(positive_integer());
  cmd->add_option("--shapes", o->shapes, "for each listed operator (training and translation), its N heaviest input shapes (0: none)")
      ->capture_default_str()->check(non_negative());
  cmd->callback([o] { run_bench(*o, std::cout); });
}

}  // namespace nmt::cli
