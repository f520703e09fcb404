#include "nmt/data/batching.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

namespace nmt::data {

namespace {

/// Fisher-Yates with an explicit draw, so that a seed gives the same order with any standard
/// library (std::shuffle and std::uniform_int_distribution are implementation-defined).
template <typename T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    // Unbiased draw in [0, i) by rejection.
    const uint64_t bound = static_cast<uint64_t>(i);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do r = rng();
    while (r >= limit);
    std::swap(v[i - 1], v[static_cast<size_t>(r % bound)]);
  }
}

/// [rows, cols] int64 CPU tensor filled with kPad.
at::Tensor padded(int64_t rows, int64_t cols) {
  at::Tensor t = at::empty({rows, cols}, at::TensorOptions().dtype(at::kLong));
  t.fill_(kPad);
  return t;
}

}  // namespace

Batch make_batch(const std::vector<const Example*>& examples, c10::Device device) {
  if (examples.empty()) throw std::invalid_argument("make_batch: no examples");
  const auto b = static_cast<int64_t>(examples.size());
  size_t max_src = 0, max_tgt = 0;
  for (const Example* e : examples) {
    if (!e) throw std::invalid_argument("make_batch: null example");
    max_src = std::max(max_src, e->src.size());
    max_tgt = std::max(max_tgt, e->tgt.size());
  }
  const auto s = static_cast<int64_t>(max_src) + 1;
  const auto t = static_cast<int64_t>(max_tgt) + 1;
  at::Tensor src = padded(b, s), tgt_in = padded(b, t), tgt_out = padded(b, t);
  at::Tensor src_len = at::empty({b}, at::TensorOptions().dtype(at::kLong));
  int64_t* ps = src.data_ptr<int64_t>();
  int64_t* pi = tgt_in.data_ptr<int64_t>();
  int64_t* po = tgt_out.data_ptr<int64_t>();
  int64_t* pl = src_len.data_ptr<int64_t>();

  Batch batch;
  batch.indices.reserve(examples.size());
  for (int64_t r = 0; r < b; ++r) {
    const Example& e = *examples[r];
    int64_t* row_s = ps + r * s;
    std::copy(e.src.begin(), e.src.end(), row_s);
    row_s[e.src.size()] = kEos;
    pl[r] = static_cast<int64_t>(e.src.size()) + 1;

    int64_t* row_i = pi + r * t;
    int64_t* row_o = po + r * t;
    row_i[0] = kBos;
    std::copy(e.tgt.begin(), e.tgt.end(), row_i + 1);
    std::copy(e.tgt.begin(), e.tgt.end(), row_o);
    row_o[e.tgt.size()] = kEos;
    batch.num_tgt_tokens += static_cast<int64_t>(e.tgt.size()) + 1;
    batch.indices.push_back(e.index);
  }
  const bool cpu = device.is_cpu();
  batch.src = cpu ? src : src.to(device);
  batch.src_lengths = cpu ? src_len : src_len.to(device);
  batch.tgt_in = cpu ? tgt_in : tgt_in.to(device);
  batch.tgt_out = cpu ? tgt_out : tgt_out.to(device);
  return batch;
}

Batch make_source_batch(const std::vector<std::vector<int64_t>>& sentences,
                        const std::vector<size_t>& rows, c10::Device device) {
  if (rows.empty()) throw std::invalid_argument("make_source_batch: no rows");
  size_t max_src = 0;
  for (size_t r : rows) {
    if (r >= sentences.size())
      throw std::out_of_range("make_source_batch: row " + std::to_string(r) + " of " +
                              std::to_string(sentences.size()) + " sentences");
    max_src = std::max(max_src, sentences[r].size());
  }
  const auto b = static_cast<int64_t>(rows.size());
  const auto s = static_cast<int64_t>(max_src) + 1;
  at::Tensor src = padded(b, s);
  at::Tensor src_len = at::empty({b}, at::TensorOptions().dtype(at::kLong));
  int64_t* ps = src.data_ptr<int64_t>();
  int64_t* pl = src_len.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    const auto& sent = sentences[rows[i]];
    std::copy(sent.begin(), sent.end(), ps + i * s);
    ps[i * s + static_cast<int64_t>(sent.size())] = kEos;
    pl[i] = static_cast<int64_t>(sent.size()) + 1;
  }
  Batch batch;
  batch.src = device.is_cpu() ? src : src.to(device);
  batch.src_lengths = device.is_cpu() ? src_len : src_len.to(device);
  batch.indices = rows;
  return batch;
}

std::vector<std::vector<size_t>> make_token_batches(const std::vector<std::pair<uint32_t, uint32_t>>& lengths,
                                                    int64_t max_tokens, bool shuffle, uint64_t seed) {
  if (max_tokens <= 0)
    throw std::invalid_argument("make_token_batches: max_tokens must be positive, got " +
                                std::to_string(max_tokens));
  const size_t n = lengths.size();
  if (n == 0) return {};
  std::mt19937_64 rng(seed);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (shuffle) seeded_shuffle(order, rng);

  // Window of about 100 batches' worth of examples, from the mean padded length.
  double total_len = 0;
  for (const auto& [src, tgt] : lengths) total_len += static_cast<double>(std::max(src, tgt) + 1);
  const double mean_len = total_len / static_cast<double>(n);
  const auto per_batch = std::max<size_t>(1, static_cast<size_t>(max_tokens / mean_len));
  const size_t window = std::max<size_t>(1, 100 * per_batch);

  std::vector<std::vector<size_t>> batches;
  for (size_t begin = 0; begin < n; begin += window) {
    const size_t end = std::min(n, begin + window);
    std::stable_sort(order.begin() + begin, order.begin() + end, [&](size_t a, size_t b) {
      const auto& la = lengths[a];
      const auto& lb = lengths[b];
      if (la.second != lb.second) return la.second < lb.second;
      return la.first < lb.first;
    });
    std::vector<size_t> current;
    int64_t max_len = 0;  // max padded length in `current`
    for (size_t k = begin; k < end; ++k) {
      const auto& [src_len, tgt_len] = lengths[order[k]];
      const auto len = static_cast<int64_t>(std::max(src_len, tgt_len)) + 1;
      const int64_t new_max = std::max(max_len, len);
      if (!current.empty() && static_cast<int64_t>(current.size() + 1) * new_max > max_tokens) {
        batches.push_back(std::move(current));
        current.clear();
        max_len = len;
      } else {
        max_len = new_max;
      }
      current.push_back(order[k]);
    }
    if (!current.empty()) batches.push_back(std::move(current));
  }
  if (shuffle) seeded_shuffle(batches, rng);
  return batches;
}

std::vector<std::vector<size_t>> make_token_batches(const std::vector<Example>& examples, int64_t max_tokens,
                                                    bool shuffle, uint64_t seed) {
  std::vector<std::pair<uint32_t, uint32_t>> lengths;
  lengths.reserve(examples.size());
  for (const auto& e : examples)
    lengths.emplace_back(static_cast<uint32_t>(e.src.size()), static_cast<uint32_t>(e.tgt.size()));
  return make_token_batches(lengths, max_tokens, shuffle, seed);
}

std::vector<std::vector<size_t>> make_sentence_batches(
    const std::vector<std::vector<int64_t>>& src_sentences, int64_t max_tokens,
    int64_t max_sentences) {
  const size_t n = src_sentences.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return src_sentences[a].size() > src_sentences[b].size();
  });
  std::vector<std::vector<size_t>> batches;
  std::vector<size_t> current;
  int64_t max_len = 0;
  for (size_t idx : order) {
    const auto len = static_cast<int64_t>(src_sentences[idx].size()) + 1;
    const int64_t new_max = std::max(max_len, len);
    const auto next_size = static_cast<int64_t>(current.size()) + 1;
    const bool over = (max_tokens > 0 && next_size * new_max > max_tokens) ||
                      (max_sentences > 0 && next_size > max_sentences);
    if (!current.empty() && over) {
      batches.push_back(std::move(current));
      current.clear();
      max_len = len;
    } else {
      max_len = new_max;
    }
    current.push_back(idx);
  }
  if (!current.empty()) batches.push_back(std::move(current));
  std::stable_sort(batches.begin(), batches.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return batches;
}

}  // namespace nmt::data
