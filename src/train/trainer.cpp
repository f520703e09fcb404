#include "nmt/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <optional>

#include <torch/torch.h>
#include <spdlog/spdlog.h>

#include "nmt/data/batching.h"
#include "nmt/data/corpus.h"
#include "nmt/data/token_file.h"
#include "nmt/precision.h"
#include "nmt/runtime.h"
#include "nmt/io/checkpoint.h"
#include "nmt/train/ema.h"
#include "nmt/train/run_guard.h"
#include "nmt/train/schedule.h"
#include "nmt/train/update.h"
#include "nmt/train/validate.h"
#include "nmt/viz/curves.h"
#include "nmt/viz/heatmap.h"

namespace fs = std::filesystem;

namespace nmt::train {

using io::Checkpoint;
using io::TrainingState;
namespace {

using Clock = std::chrono::steady_clock;

/// Where the training corpus's token file for these vocabularies lives: in model_dir.
fs::path token_file_path(const Config& c, const data::Vocab& src, const data::Vocab& tgt) {
  return fs::path(c.train.model_dir) /
         data::token_file_name(c.data.train_src, c.data.train_tgt, src, tgt, c.data.max_len);
}

/// The training corpus's token file, built when missing (replacing token files of earlier inputs
/// in model_dir). Returns its path.
std::string ensure_token_file(const Config& c, const data::Vocab& src, const data::Vocab& tgt) {
  const fs::path dir = c.train.model_dir;
  const auto path = token_file_path(c, src, tgt);
  if (fs::exists(path)) {
    spdlog::info("training corpus: reusing {}", path.string());
    return path.string();
  }
  data::build_token_file(c.data.train_src, c.data.train_tgt, src, tgt, c.data.max_len, path.string());
  for (const auto& f : fs::directory_iterator(dir)) {
    const auto name = f.path().filename().string();
    if (f.path() != path && name.rfind("corpus-", 0) == 0 && f.path().extension() == ".tok") fs::remove(f.path());
  }
  return path.string();
}

/// Whether `dir` holds SentencePiece models that `nmt preprocess` trained for this config's data
/// (the same corpora and vocabulary settings).
bool prepared_for(const fs::path& dir, const Config& config) {
  if (!fs::exists(dir / "config.yaml")) return false;
  DataConfig stored;
  try {
    stored = load_config((dir / "config.yaml").string()).data;
  } catch (const std::exception&) {
    return false;  // not ours to reuse
  }
  const auto& d = config.data;
  return stored.train_src == d.train_src && stored.train_tgt == d.train_tgt && stored.vocab_type == d.vocab_type &&
         stored.vocab_size == d.vocab_size && stored.joint_vocab == d.joint_vocab &&
         stored.character_coverage == d.character_coverage && stored.spm_src == d.spm_src &&
         stored.spm_tgt == d.spm_tgt;
}

/// The seed of rank `rank`'s dropout generator (ranks other than 0, whose generator the
/// checkpoint holds), from the run's seed and the step it starts at.
uint64_t rank_seed(uint64_t seed, int rank, int64_t step) {
  return seed + 7919 * static_cast<uint64_t>(rank) + static_cast<uint64_t>(step);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string hms(double seconds) {
  auto s = static_cast<int64_t>(std::max(0.0, seconds));
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}

/// The model validation uses: with train.ema_decay > 0 the checkpoint's moving average of the
/// weights (started from the current weights when the checkpoint holds none), else the model
/// itself (and a stored average is dropped).
const models::Seq2Seq& validation_model(Checkpoint& ck, c10::Device device) {
  if (ck.config.train.ema_decay <= 0) {
    ck.ema = nullptr;
    return ck.model;
  }
  const bool fresh = !ck.ema;
  if (fresh) ck.ema = models::make_model(ck.config.model, ck.src_vocab.size(), ck.tgt_vocab.size());
  ck.ema->to(device);
  if (fresh) copy_weights(*ck.ema, *ck.model);
  return ck.ema;
}

class Trainer {
 public:
  Trainer(Checkpoint ck, c10::Device device, std::unique_ptr<ProcessGroup> group)
      : ck_(std::move(ck)), device_(device),
        translator_(validation_model(ck_, device), ck_.src_vocab, ck_.tgt_vocab, ck_.config.search, device),
        schedule_(ck_.config.train), group_(std::move(group)) {
    const auto& c = ck_.config;
    open_training_corpus();
    auto valid_text = data::read_parallel(c.data.valid_src, c.data.valid_tgt);
    valid_.examples = data::encode_corpus(valid_text, ck_.src_vocab, ck_.tgt_vocab, 0);
    size_t n = valid_text.size();
    if (c.train.valid_max_sentences > 0) n = std::min<size_t>(n, c.train.valid_max_sentences);
    valid_.references.assign(valid_text.tgt.begin(), valid_text.tgt.begin() + n);
    valid_.src_ids = ck_.src_vocab.encode_batch({valid_text.src.begin(), valid_text.src.begin() + n});
    auto& ex = valid_.examples;
    ex.erase(std::remove_if(ex.begin(), ex.end(), [n](const data::Example& e) { return e.index >= n; }), ex.end());

    if (c.model.attention.mode == AttentionMode::Variational && c.train.label_smoothing > 0)
      spdlog::warn("train.label_smoothing {} does not apply to variational attention: its likelihood terms "
                   "are taken without smoothing (as Deng et al. 2018 train)", c.train.label_smoothing);
    optimizer_ = make_optimizer(*ck_.model, c.train);
    if (group_) {
      // Every rank starts from rank 0's weights; dropout masks differ between ranks.
      std::vector<at::Tensor> state;
      for (auto& p : ck_.model->parameters()) state.push_back(p.data());
      for (auto& b : ck_.model->buffers()) state.push_back(b);
      torch::NoGradGuard no_grad;
      group_->broadcast(state);
      if (ck_.ema && ck_.state.step == 0) copy_weights(*ck_.ema, *ck_.model);  // from rank 0's weights too
      if (group_->rank() > 0) torch::manual_seed(rank_seed(c.train.seed, group_->rank(), ck_.state.step));
      reducer_ = std::make_unique<GradientReducer>(*group_, ck_.model->parameters(),
                                                   static_cast<int64_t>(c.train.dist_bucket_mb * (1 << 20)));
      spdlog::info("data-parallel training: {} processes (rank {} of this one), {} gradient buckets of up to "
                   "{} MB, an update = {} processes x {} batches of {} tokens", group_->size(), group_->rank(),
                   reducer_->num_buckets(), c.train.dist_bucket_mb, group_->size(), c.train.accum_steps,
                   c.data.batch_tokens);
    }
    if (ck_.state.lr_base > 0) {
      schedule_.base_ = ck_.state.lr_base;
      schedule_.bad_count_ = static_cast<int>(ck_.state.lr_bad_count);
    }
    int64_t params = 0;
    for (auto& p : ck_.model->parameters()) params += p.numel();
    spdlog::info("model: {} parameters; vocabulary {} (src) / {} (tgt); device {}", params,
                 ck_.src_vocab.size(), ck_.tgt_vocab.size(), device_.str());
    choose_training_precision();
    if (ck_.ema)
      spdlog::info("moving average of the weights: train.ema_decay {} (validation, best.pt and translation use it)",
                   c.train.ema_decay);
  }

  /// Resolves train.precision; with several processes bf16 only where every rank chose it.
  void choose_training_precision() {
    auto choice = choose_precision(ck_.config.train.precision, device_, "train.precision");
    if (group_) {
      auto votes = torch::tensor({choice.precision == Precision::kBf16 ? 1.0 : 0.0}, torch::kFloat64);
      group_->all_reduce_sum(votes);
      if (choice.precision == Precision::kBf16 && votes.item<double>() < group_->size()) {
        choice = {Precision::kFp32, choice.reason + "; fp32 because another rank chose fp32"};
      }
    }
    precision_ = choice.precision;
    translator_.set_precision(precision_);
    spdlog::info("precision: {}", choice.reason);
  }

  void resume_optimizer(const std::string& path) { io::load_optimizer_state(path, *optimizer_, device_); }
  /// The training corpus, memory-mapped from its token file in model_dir, which rank 0 builds
  /// when it is missing (the other ranks wait).
  void open_training_corpus();
  void run();

 private:
  bool is_main() const { return !group_ || group_->rank() == 0; }
  int rank() const { return group_ ? group_->rank() : 0; }
  int world() const { return group_ ? group_->size() : 1; }
  /// Rank 0's training state after its validation, copied to every other rank.
  void share_validation_outcome(std::string& why);
  bool out_of_time() const {
    const double budget = ck_.config.train.max_time * 60.0;
    return budget > 0 && elapsed() >= budget;
  }
  double elapsed() const { return elapsed_before_ + seconds_since(start_); }
  void update(const std::vector<std::vector<size_t>>& batches, size_t first, size_t count);
  /// Validates and writes checkpoints (rank 0; the others wait for its outcome; last.pt only when
  /// `save_last`); returns why training must stop, or "" to go on.
  std::string validate_and_save(bool save_last = true);
  std::string validate_on_main(bool save_last);
  /// The stop requests of all ranks, agreed on: the time budget, and a signal (its number, or 0).
  std::pair<bool, int> stop_requests();
  void save(const std::string& name);
  /// Draws the learning curves so far into MODEL_DIR/curves.png and curves.svg (rank 0); a
  /// failure is a warning, never the end of the run.
  void draw_curves();
  std::string eta(int64_t batches_per_epoch) const;

  Checkpoint ck_;
  c10::Device device_;
  Precision precision_ = Precision::kFp32;  ///< resolved train.precision, the same on every rank
  search::Translator translator_;  ///< validation's: the model being trained (or its moving average), search settings of the config
  LrSchedule schedule_;
  std::unique_ptr<FusedAdam> optimizer_;
  std::unique_ptr<ProcessGroup> group_;  ///< null in single-process training
  std::unique_ptr<GradientReducer> reducer_;
  double comm_seconds_ = 0;              ///< exposed all-reduce time since the last log line
  std::optional<data::TokenCorpus> train_;
  ValidationSet valid_;
  Clock::time_point start_ = Clock::now();
  double elapsed_before_ = 0;  ///< training time of earlier runs (resume)
  // Running statistics since the last log line.
  double log_loss_ = 0, log_nll_ = 0;
  int64_t log_tokens_ = 0;
  Clock::time_point log_start_ = Clock::now();
};

void Trainer::update(const std::vector<std::vector<size_t>>& batches, size_t first, size_t count) {
  std::vector<data::Batch> update_batches;
  for (size_t i = first; i < first + count; ++i) {
    std::vector<data::Example> rows;
    for (size_t r : batches[i]) rows.push_back(train_->example(r));
    std::vector<const data::Example*> examples;
    for (const auto& e : rows) examples.push_back(&e);
    update_batches.push_back(data::make_batch(examples, device_));
  }
  std::optional<DataParallel> parallel;
  if (group_) parallel.emplace(DataParallel{*group_, *reducer_});
  auto stats = train_update(*ck_.model, *optimizer_, update_batches, ck_.config.train,
                            schedule_.rate(ck_.state.step + 1), parallel ? &*parallel : nullptr, precision_);
  if (reducer_) comm_seconds_ += reducer_->take_wait_seconds();
  ++ck_.state.step;
  if (ck_.ema) update_ema(*ck_.ema, *ck_.model, ck_.config.train.ema_decay, ck_.state.step);
  log_loss_ += stats.loss;
  log_nll_ += stats.nll;
  log_tokens_ += stats.update_tgt_tokens;
}

void Trainer::open_training_corpus() {
  if (is_main()) ensure_token_file(ck_.config, ck_.src_vocab, ck_.tgt_vocab);
  if (group_) group_->barrier();
  train_.emplace(token_file_path(ck_.config, ck_.src_vocab, ck_.tgt_vocab).string(), ck_.src_vocab.size(),
                 ck_.tgt_vocab.size());
  if (train_->empty()) throw std::runtime_error(ck_.config.data.train_src + ": no usable training pair");
}

std::pair<bool, int> Trainer::stop_requests() {
  const int sig = stop_signal();
  const bool late = out_of_time();
  if (!group_) return {late, sig};
  auto t = torch::tensor({late ? 1.0 : 0.0, sig != 0 ? 1.0 : 0.0}, torch::kFloat64);
  group_->all_reduce_sum(t);
  // A signal to any rank stops them all (with SIGTERM's meaning where it was not received).
  return {t[0].item<double>() > 0, t[1].item<double>() > 0 ? (sig != 0 ? sig : SIGTERM) : 0};
}

void Trainer::share_validation_outcome(std::string& why) {
  if (!group_) return;
  auto& s = ck_.state;
  auto t = torch::tensor({why.empty() ? 0.0 : 1.0, schedule_.base_, static_cast<double>(schedule_.bad_count_),
                          s.best_metric, static_cast<double>(s.best_step), static_cast<double>(s.bad_validations)},
                         torch::kFloat64);
  group_->broadcast({t});
  if (is_main()) return;
  auto v = t.accessor<double, 1>();
  if (v[0] > 0) why = "stopped by rank 0";
  schedule_.base_ = v[1];
  schedule_.bad_count_ = static_cast<int>(v[2]);
  s.best_metric = v[3];
  s.best_step = static_cast<int64_t>(v[4]);
  s.bad_validations = static_cast<int64_t>(v[5]);
}

std::string Trainer::eta(int64_t batches_per_epoch) const {
  const auto& c = ck_.config.train;
  const auto& s = ck_.state;
  const double per_step = s.step > 0 ? elapsed() / static_cast<double>(s.step) : 0.0;
  double remaining = 1e18;
  if (c.max_time > 0) remaining = std::min(remaining, c.max_time * 60.0 - elapsed());
  if (c.max_steps > 0) remaining = std::min(remaining, (c.max_steps - s.step) * per_step);
  const int64_t per_update = static_cast<int64_t>(c.accum_steps) * world();
  const int64_t steps_per_epoch = std::max<int64_t>(1, batches_per_epoch / per_update);
  const int64_t left = (c.max_epochs - s.epoch) * steps_per_epoch + steps_per_epoch - s.batch_in_epoch / per_update;
  remaining = std::min(remaining, left * per_step);
  return hms(remaining);
}

void Trainer::save(const std::string& name) {
  if (!is_main()) return;  // rank 0 writes the checkpoints
  ck_.state.lr_base = schedule_.base_;
  ck_.state.lr_bad_count = schedule_.bad_count_;
  ck_.state.elapsed_seconds = elapsed();
  io::capture_generators(ck_.state);  // resume continues with the very same random numbers
  const auto path = (fs::path(ck_.config.train.model_dir) / name).string();
  io::save_checkpoint(path, ck_, optimizer_.get());
  if (name == "last.pt" && ck_.config.train.keep_checkpoints > 0)
    io::keep_numbered_checkpoint(path, ck_.state.step, ck_.config.train.keep_checkpoints);
}

void Trainer::draw_curves() {
  if (!is_main() || !viz::heatmap_supported()) return;
  auto curve = [](const char* label, const std::vector<io::CurveEntry>& entries, double io::CurveEntry::*field) {
    viz::Curve c{label, {}};
    for (const auto& e : entries)
      if (e.*field >= 0) c.points.push_back({e.step, e.seconds, e.*field});
    return c;
  };
  const auto& s = ck_.state;
  std::vector<viz::CurvePanel> panels = {
      {"loss", false, {curve("training", s.train_curve, &io::CurveEntry::loss),
                       curve("validation", s.valid_curve, &io::CurveEntry::loss)}},
      {"perplexity", true, {curve("training", s.train_curve, &io::CurveEntry::perplexity),
                            curve("validation", s.valid_curve, &io::CurveEntry::perplexity)}}};
  if (ck_.config.train.stop_metric == StopMetric::Bleu)
    panels.push_back({"BLEU", false, {curve("validation", s.valid_curve, &io::CurveEntry::bleu)}});
  for (const char* format : {"png", "svg"}) {
    const auto path = (fs::path(ck_.config.train.model_dir) / (std::string("curves.") + format)).string();
    try {
      write_file_atomic(path, viz::render_curves(panels, format));
    } catch (const std::exception& e) {
      spdlog::warn("{}: learning curves not drawn: {}", path, e.what());
    }
  }
}

std::string Trainer::validate_and_save(bool save_last) {
  std::string why;
  ck_.state.validated_step = ck_.state.step;
  if (is_main()) why = validate_on_main(save_last);
  share_validation_outcome(why);
  return why;
}

std::string Trainer::validate_on_main(bool save_last) {
  const auto& c = ck_.config;
  auto t0 = Clock::now();
  const bool with_bleu = c.train.stop_metric == StopMetric::Bleu;
  ValidationResult r;
  {
    AutocastGuard autocast(precision_, device_);  // the teacher-forced pass; the translator has its own
    r = validate(translator_, valid_, with_bleu);
  }
  // Higher is better: BLEU, or the negated (bound on the) perplexity.
  double metric = with_bleu ? r.bleu : -r.perplexity;
  if (c.train.stop_metric == StopMetric::Elbo) metric = -r.bound_perplexity;
  auto shown = [&](double m) { return with_bleu ? m : -m; };
  const char* metric_name = with_bleu ? "BLEU" : c.train.stop_metric == StopMetric::Elbo ? "ELBO ppl bound" : "ppl";
  auto& s = ck_.state;
  const bool improved = metric > s.best_metric;
  if (improved) {
    s.best_metric = metric;
    s.best_step = s.step;
    s.bad_validations = 0;
  } else {
    ++s.bad_validations;
  }
  if (schedule_.on_validation(improved))
    spdlog::info("learning rate decayed to {:.3g}", schedule_.base_);
  std::string latent;
  if (r.prior_entropy >= 0) {
    latent = fmt::format(" | alignment: H(prior) {:.3f}", r.prior_entropy);
    if (r.q_entropy >= 0) latent += fmt::format(" H(q) {:.3f} KL(q||p) {:.3f}", r.q_entropy, r.kl);
    latent += fmt::format(" accuracy prior {:.2f}%", 100 * r.accuracy_prior);
    if (r.accuracy_q >= 0) latent += fmt::format(" q {:.2f}%", 100 * r.accuracy_q);
  }
  spdlog::info("validation step {} epoch {}: loss {:.4f} ppl {:.2f}{}{}{} ({:.0f}s){}", s.step, s.epoch, r.loss,
               r.perplexity,
               r.bound_perplexity > 0 ? fmt::format(" ELBO ppl bound {:.2f}", r.bound_perplexity) : "",
               with_bleu ? fmt::format(" BLEU {:.2f}", r.bleu) : "", latent, seconds_since(t0),
               improved ? " *best*" : fmt::format(" (best {} {:.2f} at step {})", metric_name,
                                                 shown(s.best_metric), s.best_step));
  s.valid_curve.push_back({s.step, elapsed(), r.loss, r.perplexity, with_bleu ? r.bleu : -1.0});
  draw_curves();
  if (improved) save("best.pt");
  if (save_last) save("last.pt");
  if (c.train.target_ppl > 0 && r.perplexity <= c.train.target_ppl)
    return fmt::format("target perplexity reached ({:.3f} <= train.target_ppl {})", r.perplexity, c.train.target_ppl);
  if (s.bad_validations >= c.train.patience) return "early stopping (patience)";
  return "";
}

void Trainer::run() {
  const auto& c = ck_.config.train;
  auto& s = ck_.state;
  ck_.model->train();
  start_ = log_start_ = Clock::now();
  elapsed_before_ = s.elapsed_seconds;
  // last.pt is written after validations, every train.save_every updates and when the run
  // stops; a run resumed at a validated step does not validate it again.
  bool stop = false;
  std::string reason = "maximum epochs reached";
  // Stopped (signal, max_steps) at a regular validation step before validating: validate now.
  if (s.step > 0 && s.validated_step != s.step && s.step % c.valid_every == 0)
    if (auto why = validate_and_save(); !why.empty()) { stop = true; reason = why; }
  for (; s.epoch <= c.max_epochs && !stop; ++s.epoch, s.batch_in_epoch = 0) {
    // Every rank builds the same batch list; an update takes the next accum_steps x world
    // batches, accum_steps for each rank (fewer, or none, at the epoch's end).
    auto batches = data::make_token_batches(train_->lengths(), ck_.config.data.batch_tokens, true, c.seed + s.epoch);
    const size_t accum = static_cast<size_t>(c.accum_steps);
    while (static_cast<size_t>(s.batch_in_epoch) < batches.size()) {
      const size_t first = s.batch_in_epoch;
      const size_t count = std::min(accum * world(), batches.size() - first);
      const size_t mine = std::min(first + count, first + accum * rank());
      update(batches, mine, std::min(accum, first + count - mine));
      s.batch_in_epoch += static_cast<int64_t>(count);
      if (s.step % c.log_every == 0) {
        const double dt = seconds_since(log_start_);
        if (group_) {
          auto sums = torch::tensor({log_loss_, log_nll_}, torch::kFloat64);
          group_->all_reduce_sum(sums);
          log_loss_ = sums[0].item<double>();
          log_nll_ = sums[1].item<double>();
        }
        s.train_curve.push_back({s.step, elapsed(), log_loss_ / std::max<int64_t>(1, log_tokens_),
                                 std::exp(log_nll_ / std::max<int64_t>(1, log_tokens_))});
        spdlog::info("step {} epoch {} loss {:.3f} ppl {:.2f} lr {:.3g} {:.0f} tgt tok/s elapsed {} ETA {}{}",
                     s.step, s.epoch, log_loss_ / std::max<int64_t>(1, log_tokens_),
                     std::exp(log_nll_ / std::max<int64_t>(1, log_tokens_)), schedule_.rate(s.step),
                     log_tokens_ / std::max(dt, 1e-9), hms(elapsed()), eta(batches.size()),
                     group_ ? fmt::format(" | {} processes, {:.0f} tgt tokens/update, all-reduce wait {:.1f} "
                                          "ms/update ({:.1f}%)", world(), static_cast<double>(log_tokens_) / c.log_every,
                                          1e3 * comm_seconds_ / c.log_every, 100 * comm_seconds_ / std::max(dt, 1e-9))
                            : "");
        comm_seconds_ = 0;
        log_loss_ = log_nll_ = 0;
        log_tokens_ = 0;
        log_start_ = Clock::now();
      }
      if (c.max_steps > 0 && s.step >= c.max_steps) { stop = true; reason = "maximum steps reached"; }
      const auto [late, sig] = stop_requests();
      if (late) { stop = true; reason = "time budget (train.max_time) reached"; }
      if (sig != 0) {
        save("last.pt");
        spdlog::warn("{} received: interrupted at step {}; resume with: nmt train --resume {}",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", s.step, c.model_dir);
        return;
      }
      if (s.step % c.valid_every == 0) {
        if (auto why = validate_and_save(); !why.empty() && !stop) { stop = true; reason = why; }
      } else if (stop) {
        // A last validation (for best.pt) that a longer run would not make: last.pt is written
        // before it, so a resumed run does not see its effect on patience or the schedule.
        save("last.pt");
        validate_and_save(/*save_last=*/false);
      } else if (c.save_every > 0 && s.step % c.save_every == 0) {
        save("last.pt");  // resumable between validations (--resume continues at this batch)
      }
      if (stop) break;
    }
    if (!stop && s.validated_step != s.step) {
      if (auto why = validate_and_save(); !why.empty() && !stop) { stop = true; reason = why; }
    }
    if (stop) break;
  }
  const bool bleu = c.stop_metric == StopMetric::Bleu;
  const std::string best =
      s.best_metric > -1e29 ? fmt::format("best validation {} {:.2f} at step {}",
                                          bleu ? "BLEU" : c.stop_metric == StopMetric::Elbo ? "ELBO ppl bound" : "perplexity",
                                          bleu ? s.best_metric : -s.best_metric, s.best_step)
                            : std::string("no finite validation score");
  spdlog::info("training finished: {}; {} updates in {}; {}", reason, s.step, hms(elapsed()), best);
}

}  // namespace

namespace {

/// Joins the training group described by `env`, or returns null for single-process training.
std::unique_ptr<ProcessGroup> join(const DistributedEnv& env, c10::Device device, const TrainConfig& c) {
  if (!env.active()) return nullptr;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(c.dist_timeout * 1000));
  return std::make_unique<ProcessGroup>(env, device, timeout);
}

/// The device of this rank: with several processes on CUDA, each uses GPU LOCAL_RANK unless the
/// config names one.
c10::Device rank_device(const std::string& name, const DistributedEnv& env) {
  const auto device = resolve_device(name);
  if (device.is_cuda() && env.active() && !device.has_index())
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  return device;
}

}  // namespace

void train_new(const Config& config, const DistributedEnv& env) {
  const fs::path dir = config.train.model_dir;
  const auto device = rank_device(config.train.device, env);
  auto group = join(env, device, config.train);
  const bool main = !group || group->rank() == 0;
  const bool prepared = prepared_for(dir, config);  // SentencePiece models from `nmt preprocess`
  if (main) {
    for (const char* name : {"last.pt", "best.pt"})
      if (fs::exists(dir / name))
        throw std::runtime_error(config.train.model_dir + " already holds a checkpoint (" + name +
                                 "): continue it with `nmt train --resume " + config.train.model_dir +
                                 "` or choose another train.model_dir");
    fs::create_directories(dir);
    write_file_atomic((dir / "config.yaml").string(), to_yaml(config));
  }
  torch::manual_seed(config.train.seed);
  Checkpoint ck;
  ck.config = config;
  // Rank 0 trains the SentencePiece models; the others then load them.
  if (main) std::tie(ck.src_vocab, ck.tgt_vocab) = prepare_vocabs(config, config.train.model_dir, "spm", prepared);
  if (group) group->barrier();
  if (!main) std::tie(ck.src_vocab, ck.tgt_vocab) = prepare_vocabs(config, config.train.model_dir, "spm", true);
  ck.model = models::make_model(config.model, ck.src_vocab.size(), ck.tgt_vocab.size());
  ck.model->to(device);
  ck.state.lr_base = config.train.lr;
  Trainer trainer(std::move(ck), device, std::move(group));
  trainer.run();
}

void preprocess(const Config& config) {
  const fs::path dir = config.train.model_dir;
  fs::create_directories(dir);
  write_file_atomic((dir / "config.yaml").string(), to_yaml(config));
  const auto [src, tgt] = prepare_vocabs(config, config.train.model_dir, "spm", /*reuse=*/true);
  const auto path = ensure_token_file(config, src, tgt);
  spdlog::info("preprocessed into {}: `nmt train` with the same config (train.model_dir {}) reuses it",
               path, config.train.model_dir);
}

void resume_training(io::Checkpoint ck, const std::string& model_dir, const DistributedEnv& env) {
  const std::string path = (fs::path(model_dir) / "last.pt").string();
  ck.config.train.model_dir = model_dir;
  const auto device = rank_device(ck.config.train.device, env);
  auto group = join(env, device, ck.config.train);
  ck.model->to(device);
  if (!group || group->rank() == 0)
    write_file_atomic((fs::path(model_dir) / "config.yaml").string(), to_yaml(ck.config));
  spdlog::info("resuming {} at step {}, epoch {} (batch {})", model_dir, ck.state.step, ck.state.epoch,
               ck.state.batch_in_epoch);
  const TrainingState saved = ck.state;
  const uint64_t seed = ck.config.train.seed;
  const int rank = group ? group->rank() : 0;
  Trainer trainer(std::move(ck), device, std::move(group));
  trainer.resume_optimizer(path);
  // The checkpoint holds rank 0's generators; the other ranks were seeded by the Trainer.
  if (rank == 0 && !io::restore_generators(saved)) {  // a format-1 checkpoint: no generator state stored
    spdlog::warn("{} holds no random generator state (written by an older nmt): the resumed run reseeds and "
                 "will not repeat the uninterrupted one exactly", path);
    torch::manual_seed(seed + static_cast<uint64_t>(saved.step));
  }
  trainer.run();
}

}  // namespace nmt::train
