#include "nmt/search/search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "nmt/search/top_k.h"

namespace nmt::search {

double length_penalty(int64_t length, double alpha) {
  return std::pow((5.0 + static_cast<double>(length)) / 6.0, alpha);
}

std::vector<int64_t> max_lengths(const at::Tensor& src, const SearchConfig& options) {
  // Source length without padding and without the final EOS.
  auto lengths = (src.ne(data::kPad).sum(1) - 1).clamp_min(0).to(at::kCPU, at::kLong);
  std::vector<int64_t> out(lengths.size(0));
  auto acc = lengths.accessor<int64_t, 1>();
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = std::max<int64_t>(1, static_cast<int64_t>(options.max_len_a * acc[i] + options.max_len_b));
  return out;
}

BeamSearch::BeamSearch(int64_t batch_size, const SearchConfig& options, std::vector<int64_t> max_lengths,
                       bool keep_attention)
    : options_(options), keep_attention_(keep_attention), K_(options.beam_size), max_lengths_(std::move(max_lengths)),
      finished_(batch_size) {
  TORCH_CHECK(K_ >= 1, "beam size must be >= 1");
  for (int64_t b = 0; b < batch_size; ++b) live_.push_back(b);
  rows_.resize(batch_size * K_);
  // Only the first row of each sentence is live at the start: the K copies are identical.
  for (int64_t r = 0; r < static_cast<int64_t>(rows_.size()); ++r)
    if (r % K_ != 0) rows_[r].log_prob = -std::numeric_limits<double>::infinity();
}

at::Tensor BeamSearch::initial_tokens() const {
  return at::full({static_cast<int64_t>(rows_.size())}, data::kBos, at::kLong);
}

at::Tensor BeamSearch::initial_rows() const {
  return at::arange(static_cast<int64_t>(live_.size()), at::kLong).repeat_interleave(K_);
}

void BeamSearch::finish(int64_t sentence, const Row& row, int64_t token, double log_prob,
                        const at::Tensor& att) {
  Hypothesis h;
  h.tokens = row.tokens;
  if (token != data::kEos) h.tokens.push_back(token);  // cut at max length: keep the token
  h.log_prob = log_prob;
  h.score = log_prob / length_penalty(static_cast<int64_t>(row.tokens.size()) + 1, options_.length_penalty);
  if (keep_attention_ && att.defined()) {
    auto steps = row.attention;
    steps.push_back(att);
    h.attention = at::stack(steps, 0);
  }
  finished_[sentence].push_back(std::move(h));
}

BeamSearch::Advance BeamSearch::advance(const at::Tensor& log_probs, const at::Tensor& attention) {
  return advance(models::StepOutput{log_probs, attention, at::Tensor()});
}

BeamSearch::Advance BeamSearch::advance(const models::StepOutput& out) {
  const auto& scores = out.log_probs.defined() ? out.log_probs : out.logits;
  const auto& attention = out.attention;
  const int64_t n_live = static_cast<int64_t>(live_.size());
  const int64_t V = scores.size(1);
  TORCH_CHECK(scores.size(0) == n_live * K_, "advance: expected ", n_live * K_, " rows, got ", scores.size(0));
  std::vector<double> base(rows_.size());
  for (size_t r = 0; r < rows_.size(); ++r) base[r] = rows_[r].log_prob;
  // Top 2K candidates per sentence, found on the model's device; only those come to the CPU.
  // A sentence's best 2K are among the best 2K of each of its rows (a row's beam score is added
  // to all its tokens alike), so the rows are searched first, and no [R, V] tensor of scores is
  // made; from logits, not even the [R, V] log-softmax (top_k_log_softmax).
  const int64_t per_row = std::min<int64_t>(2 * K_, V);
  const auto [row_values, row_ids] = step_top_k(out, per_row);  // [R, per_row]
  auto row_scores = row_values +
                    at::tensor(base, at::kDouble).to(scores.device(), at::kFloat).unsqueeze(1);
  auto top = row_scores.view({n_live, K_ * per_row}).topk(std::min<int64_t>(2 * K_, K_ * per_row), 1);
  auto top_scores = std::get<0>(top).to(at::kCPU, at::kDouble).contiguous();
  // Candidate j of sentence i: row i·K + j / per_row, token row_top's id at that row and place.
  auto top_ids = row_ids
                     .view({n_live, K_ * per_row})
                     .gather(1, std::get<1>(top))
                     .to(at::kCPU)
                     .contiguous();
  auto top_rows = std::get<1>(top).div(per_row, "floor").to(at::kCPU).contiguous();
  auto s_acc = top_scores.accessor<double, 2>();
  auto i_acc = top_ids.accessor<int64_t, 2>();
  auto r_acc = top_rows.accessor<int64_t, 2>();
  at::Tensor att_cpu = keep_attention_ && attention.defined() ? attention.to(at::kCPU, at::kFloat) : at::Tensor();
  const int64_t t = ++step_;  // tokens generated after this step, EOS included

  std::vector<int64_t> keep_rows, keep_tokens, next_live;
  std::vector<Row> next_rows;
  for (int64_t i = 0; i < n_live; ++i) {
    const int64_t sentence = live_[i];
    const bool at_max = t >= max_lengths_[sentence];
    std::vector<std::pair<int64_t, int64_t>> continuing;  // (row, token)
    std::vector<double> continuing_lp;
    for (int64_t j = 0; j < top_ids.size(1); ++j) {
      const double s = s_acc[i][j];
      if (!std::isfinite(s)) break;
      const int64_t row = i * K_ + r_acc[i][j];
      const int64_t token = i_acc[i][j];
      const at::Tensor att = att_cpu.defined() ? att_cpu[row] : at::Tensor();
      if (token == data::kEos || at_max) {
        // EOS counts only among the K best candidates (as fairseq); at max length the K best
        // candidates are finished as they stand.
        if (j < K_) finish(sentence, rows_[row], token, s, att);
      } else if (static_cast<int64_t>(continuing.size()) < K_) {
        continuing.emplace_back(row, token);
        continuing_lp.push_back(s);
      }
    }
    if (static_cast<int64_t>(finished_[sentence].size()) >= K_ || at_max || continuing.empty()) continue;
    next_live.push_back(sentence);
    for (int64_t k = 0; k < K_; ++k) {
      // Pad with a dead copy when fewer than K candidates continue.
      const bool real = k < static_cast<int64_t>(continuing.size());
      auto [row, token] = continuing[real ? k : 0];
      Row next = rows_[row];
      next.tokens.push_back(token);
      if (att_cpu.defined()) next.attention.push_back(att_cpu[row]);
      next.log_prob = real ? continuing_lp[k] : -std::numeric_limits<double>::infinity();
      keep_rows.push_back(row);
      keep_tokens.push_back(token);
      next_rows.push_back(std::move(next));
    }
  }
  live_ = std::move(next_live);
  rows_ = std::move(next_rows);
  return {at::tensor(keep_rows, at::kLong), at::tensor(keep_tokens, at::kLong)};
}

std::vector<Hypothesis> BeamSearch::best() const {
  std::vector<Hypothesis> out;
  for (const auto& hyps : finished_) {
    auto it = std::max_element(hyps.begin(), hyps.end(),
                               [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; });
    out.push_back(it == hyps.end() ? Hypothesis{} : *it);
  }
  return out;
}

std::vector<std::vector<Hypothesis>> BeamSearch::n_best(int64_t n) const {
  std::vector<std::vector<Hypothesis>> out;
  for (auto hyps : finished_) {
    std::stable_sort(hyps.begin(), hyps.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(hyps.size()) > n) hyps.resize(static_cast<size_t>(n));
    out.push_back(std::move(hyps));
  }
  return out;
}

namespace {

/// Runs the beam search to the end and returns it.
BeamSearch run_beam(models::Seq2SeqImpl& model, const at::Tensor& src, const SearchConfig& options,
                    bool keep_attention) {
  const auto device = src.device();
  BeamSearch beam(src.size(0), options, max_lengths(src, options), keep_attention);
  auto state = model.start(src)->reorder(beam.initial_rows().to(device));
  auto tokens = beam.initial_tokens().to(device);
  while (!beam.done()) {
    auto adv = beam.advance(model.step(tokens, *state));
    if (beam.done()) break;
    state = state->reorder(adv.rows.to(device));  // the old state's caches go as the new ones come
    tokens = adv.tokens.to(device);
  }
  return beam;
}

}  // namespace

std::vector<Hypothesis> beam_search(models::Seq2SeqImpl& model, const at::Tensor& src,
                                    const SearchConfig& options, bool keep_attention) {
  return run_beam(model, src, options, keep_attention).best();
}

std::vector<Hypothesis> greedy_search(models::Seq2SeqImpl& model, const at::Tensor& src,
                                      const SearchConfig& options, bool keep_attention) {
  const int64_t B = src.size(0);
  const auto limits = max_lengths(src, options);
  const int64_t max_len = *std::max_element(limits.begin(), limits.end());
  std::vector<Hypothesis> hyps(B);
  std::vector<std::vector<at::Tensor>> att(B);
  std::vector<bool> done(B, false);
  auto state = model.start(src);
  auto tokens = at::full({B}, data::kBos, src.options().dtype(at::kLong));
  for (int64_t t = 1; t <= max_len; ++t) {
    auto out = model.step(tokens, *state);
    const auto best = step_top_k(out, 1);
    const auto lp_cpu = best.values.squeeze(1).to(at::kCPU, at::kDouble);
    const auto ids = best.indices.squeeze(1).to(at::kCPU);
    auto lp = lp_cpu.accessor<double, 1>();
    auto id = ids.accessor<int64_t, 1>();
    auto att_cpu = keep_attention && out.attention.defined() ? out.attention.to(at::kCPU, at::kFloat) : at::Tensor();
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      const int64_t token = id[b];
      hyps[b].log_prob += lp[b];
      if (att_cpu.defined()) att[b].push_back(att_cpu[b]);
      if (token == data::kEos || t >= limits[b]) {
        done[b] = true;
        if (token != data::kEos) hyps[b].tokens.push_back(token);
        hyps[b].score = hyps[b].log_prob / length_penalty(t, options.length_penalty);
        if (!att[b].empty()) hyps[b].attention = at::stack(att[b], 0);
      } else {
        hyps[b].tokens.push_back(token);
        all_done = false;
      }
    }
    if (all_done) break;
    tokens = ids.to(src.device());
  }
  return hyps;
}

namespace {

/// Runs `search` without gradients and with the model in eval mode, restoring its mode after.
template <class Search>
auto in_eval_mode(models::Seq2SeqImpl& model, Search search) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  auto out = search();
  if (was_training) model.train();
  return out;
}

}  // namespace

std::vector<Hypothesis> decode(models::Seq2SeqImpl& model, const at::Tensor& src,
                               const SearchConfig& options, bool keep_attention) {
  return in_eval_mode(model, [&] {
    return options.beam_size == 1 ? greedy_search(model, src, options, keep_attention)
                                  : beam_search(model, src, options, keep_attention);
  });
}

std::vector<std::vector<Hypothesis>> decode_n_best(models::Seq2SeqImpl& model, const at::Tensor& src,
                                                   const SearchConfig& options, int64_t n, bool keep_attention) {
  if (n < 1 || n > options.beam_size)
    throw std::invalid_argument("n-best size " + std::to_string(n) + " must lie in [1, beam size " +
                                std::to_string(options.beam_size) + "]");
  if (n == 1) {
    std::vector<std::vector<Hypothesis>> out;
    for (auto& h : decode(model, src, options, keep_attention)) out.push_back({std::move(h)});
    return out;
  }
  return in_eval_mode(model, [&] { return run_beam(model, src, options, keep_attention).n_best(n); });
}

}  // namespace nmt::search
