#include "nmt/cli/model_io.h"

#include <spdlog/spdlog.h>

#include "nmt/data/corpus.h"
#include "nmt/runtime.h"
#include "nmt/search/translator.h"

namespace nmt::cli {

LoadedModel load_model(const std::string& model_dir, int threads, const std::string& device,
                       const std::string& precision) {
  const std::string path = train::find_checkpoint(model_dir);
  LoadedModel m;
  m.checkpoint = train::load_checkpoint(path, c10::Device(c10::kCPU));
  const auto& c = m.checkpoint.config;
  setup_threads(threads > 0 ? threads : c.train.threads);
  m.device = resolve_device(device.empty() ? c.train.device : device);
  m.checkpoint.model->to(m.device);
  m.checkpoint.model->eval();
  const auto choice = choose_precision(precision.empty() ? c.train.precision : precision, m.device,
                                       precision.empty() ? "the model's train.precision" : "--precision");
  m.precision = choice.precision;
  if (m.precision == Precision::kBf16 || !precision.empty()) spdlog::info("precision: {}", choice.reason);
  spdlog::debug("loaded {} (step {})", path, m.checkpoint.state.step);
  return m;
}

std::vector<std::string> translate_file(const std::string& model_dir, const std::string& src_file) {
  auto m = load_model(model_dir);
  const auto& ck = m.checkpoint;
  AutocastGuard autocast(m.precision, m.device);
  return search::translate_text(*ck.model, ck.src_vocab, ck.tgt_vocab, data::read_lines(src_file),
                                search::to_search_options(ck.config.search), ck.config.search.batch_tokens,
                                m.device);
}

}  // namespace nmt::cli
