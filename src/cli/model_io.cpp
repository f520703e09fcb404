#include "nmt/cli/model_io.h"

#include <spdlog/spdlog.h>

#include "nmt/data/corpus.h"
#include "nmt/runtime.h"

namespace nmt::cli {

LoadedModel load_model(const std::string& model_dir, int threads, const std::string& device,
                       const std::string& precision) {
  const std::string path = io::find_checkpoint(model_dir);
  auto ck = io::load_checkpoint(path, c10::Device(c10::kCPU));
  setup_threads(threads > 0 ? threads : ck.config.train.threads);
  const auto dev = resolve_device(device.empty() ? ck.config.train.device : device);
  ck.model->to(dev);
  ck.model->eval();
  spdlog::debug("loaded {} (step {})", path, ck.state.step);
  const auto choice = choose_precision(precision.empty() ? ck.config.train.precision : precision, dev,
                                       precision.empty() ? "the model's train.precision" : "--precision");
  if (choice.precision == Precision::kBf16 || !precision.empty()) spdlog::info("precision: {}", choice.reason);
  search::Translator translator(ck.model, ck.src_vocab, ck.tgt_vocab, ck.config.search, dev);
  translator.set_precision(choice.precision);
  return {std::move(ck), std::move(translator)};
}

std::vector<std::string> translate_file(const std::string& model_dir, const std::string& src_file) {
  return load_model(model_dir).translator.translate_text(data::read_lines(src_file));
}

}  // namespace nmt::cli
