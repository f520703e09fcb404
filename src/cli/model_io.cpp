#include "nmt/cli/model_io.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "nmt/data/corpus.h"
#include "nmt/models/ensemble.h"
#include "nmt/models/int8.h"
#include "nmt/runtime.h"

namespace nmt::cli {

LoadedModel load_model(const std::string& model_dir, int threads, const std::string& device,
                       const std::string& precision) {
  return load_ensemble({model_dir}, {}, threads, device, precision);
}

LoadedModel load_ensemble(const std::vector<std::string>& model_dirs, const std::vector<double>& weights,
                          int threads, const std::string& device, const std::string& precision) {
  if (model_dirs.empty()) throw std::runtime_error("no model to load");
  if (!weights.empty() && weights.size() != model_dirs.size())
    throw std::runtime_error("--weights gives " + std::to_string(weights.size()) + " weights for " +
                             std::to_string(model_dirs.size()) + " models");
  std::vector<io::Checkpoint> cks;
  c10::Device dev(c10::kCPU);
  for (const auto& dir : model_dirs) {
    const std::string path = io::find_checkpoint(dir);
    cks.push_back(io::load_checkpoint(path, c10::Device(c10::kCPU)));
    auto& ck = cks.back();
    if (cks.size() == 1) {
      setup_threads(threads > 0 ? threads : ck.config.train.threads);
      dev = resolve_device(device.empty() ? ck.config.train.device : device);
    } else {
      for (auto [side, mine, first] : {std::tuple{"target", &ck.tgt_vocab, &cks[0].tgt_vocab},
                                       std::tuple{"source", &ck.src_vocab, &cks[0].src_vocab}})
        if (mine->bytes() != first->bytes())
          throw std::runtime_error(dir + ": its " + side + " vocabulary differs from that of " + model_dirs[0] +
                                   " (the models of an ensemble must share their vocabularies)");
    }
    if (ck.ema) {  // translate with the moving average of the weights the run kept
      spdlog::info("{}: translating with its moving average of the weights (train.ema_decay {})", path,
                   ck.config.train.ema_decay);
      ck.model = std::exchange(ck.ema, nullptr);
    }
    ck.model->to(dev);
    ck.model->eval();
    spdlog::debug("loaded {} (step {})", path, ck.state.step);
  }
  models::Seq2Seq model = cks[0].model;
  if (cks.size() > 1) {
    std::vector<models::Seq2Seq> members;
    for (auto& ck : cks) members.push_back(ck.model);
    try {
      model = std::make_shared<models::EnsembleImpl>(std::move(members), weights);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(std::string("--weights: ") + e.what());
    }
    model->eval();
  }
  auto& first = cks[0];
  search::Translator translator(model, first.src_vocab, first.tgt_vocab, first.config.search, dev);
  if (precision == "int8") {
    if (!dev.is_cpu())
      throw std::runtime_error("--precision int8: int8 decoding runs on the CPU, not on " + dev.str());
    model->set_int8(true);
    translator.set_precision(Precision::kInt8);
    spdlog::info("precision: --precision: int8, linear layers dynamically quantised (engine {})",
                 models::int8_engine());
    if (!models::int8_fast_on_this_cpu())
      spdlog::warn("--precision int8: this CPU has no VNNI or AMX int8 instructions; int8 decoding is usually "
                   "no faster than fp32 here (scripts/bench_precision_decode.sh measures it)");
  } else {
    const auto choice = choose_precision(precision.empty() ? first.config.train.precision : precision, dev,
                                         precision.empty() ? "the model's train.precision" : "--precision");
    if (choice.precision == Precision::kBf16 || !precision.empty()) spdlog::info("precision: {}", choice.reason);
    translator.set_precision(choice.precision);
  }
  return {std::move(first), std::move(translator)};
}

void override_search(SearchConfig& search, int beam, double length_penalty, int batch_tokens,
                     int batch_sentences) {
  if (beam > 0) search.beam_size = beam;
  if (length_penalty >= 0) search.length_penalty = length_penalty;
  if (batch_tokens > 0) search.batch_tokens = batch_tokens;
  if (batch_sentences >= 0) search.batch_sentences = batch_sentences;
}

std::vector<std::string> translate_file(const std::string& model_dir, const std::string& src_file) {
  return load_model(model_dir).translator.translate_text(data::read_lines(src_file));
}

}  // namespace nmt::cli
