#include "nmt/serve/batcher.h"

#include <stdexcept>
#include <string>

#include "nmt/search/translator.h"

namespace nmt::serve {

BatchTranslator translate_with(search::Translator& translator) {
  return [&translator](const Sentences& sentences, const DecodeOptions& options) {
    translator.config().beam_size = options.beam_size;
    translator.set_keep_attention(options.attention);
    return translator.translate_ids_n_best(sentences, options.n_best);
  };
}

Batcher::Batcher(BatchTranslator translate, BatchBudget budget) : translate_(std::move(translate)), budget_(budget) {
  if (budget_.max_sentences < 1 || budget_.max_tokens < 1)
    throw std::invalid_argument("a batch budget must allow at least one sentence and one token");
  model_thread_ = std::thread([this] { run(); });
}

Batcher::~Batcher() { stop(); }

std::future<NBestLists> Batcher::submit(Sentences sentences, const DecodeOptions& options) {
  Request request;
  for (const auto& s : sentences) request.tokens += static_cast<int64_t>(s.size()) + 1;
  request.sentences = std::move(sentences);
  request.options = options;
  auto result = request.result.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw std::runtime_error("the translation queue is stopped (the server is shutting down)");
    if (request.sentences.empty()) {
      ++stats_.requests;
      request.result.set_value({});
      return result;
    }
    queue_.push_back(std::move(request));
  }
  waiting_.notify_one();
  return result;
}

void Batcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  waiting_.notify_all();
  std::call_once(joined_, [this] { model_thread_.join(); });
}

BatcherStats Batcher::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Batcher::run() {
  for (;;) {
    std::vector<Request> batch;
    {
      std::unique_lock lock(mutex_);
      waiting_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and every queued request is answered
      batch = take_batch();
    }
    translate_batch(batch);
  }
}

std::vector<Batcher::Request> Batcher::take_batch() {
  std::vector<Request> batch;
  const DecodeOptions options = queue_.front().options;
  int64_t sentences = 0, tokens = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->options != options) {
      ++it;
      continue;
    }
    const auto n = static_cast<int64_t>(it->sentences.size());
    // The first request always goes; a later one only within the budget, and the first one
    // that does not fit ends the batch (requests of equal options keep their order).
    if (!batch.empty() && (sentences + n > budget_.max_sentences || tokens + it->tokens > budget_.max_tokens)) break;
    sentences += n;
    tokens += it->tokens;
    batch.push_back(std::move(*it));
    it = queue_.erase(it);
  }
  return batch;
}

void Batcher::translate_batch(std::vector<Request>& batch) {
  Sentences sentences;
  for (auto& request : batch)
    for (auto& s : request.sentences) sentences.push_back(std::move(s));
  const DecodeOptions options = batch.front().options;
  NBestLists lists;
  std::exception_ptr error;
  try {
    lists = translate_(sentences, options);
    if (lists.size() != sentences.size())
      throw std::runtime_error("the translator returned " + std::to_string(lists.size()) + " results for " +
                               std::to_string(sentences.size()) + " sentences");
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.batches;
    stats_.requests += static_cast<int64_t>(batch.size());
    if (!error) stats_.sentences += static_cast<int64_t>(sentences.size());
  }
  size_t next = 0;
  for (auto& request : batch) {
    const size_t n = request.sentences.size();
    if (error) {
      request.result.set_exception(error);
    } else {
      NBestLists mine(std::make_move_iterator(lists.begin() + next), std::make_move_iterator(lists.begin() + next + n));
      request.result.set_value(std::move(mine));
    }
    next += n;
  }
}

}  // namespace nmt::serve
