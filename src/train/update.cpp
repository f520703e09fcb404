#include "nmt/train/update.h"

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>
#include <fmt/format.h>

#include "nmt/data/corpus.h"
#include "nmt/runtime.h"
#include "nmt/train/loss.h"

namespace fs = std::filesystem;

namespace nmt::train {

std::pair<data::Vocab, data::Vocab> prepare_vocabs(const Config& c, const std::string& dir,
                                                   const std::string& name, bool reuse) {
  if (!c.data.spm_src.empty() || !c.data.spm_tgt.empty()) {
    auto src = data::Vocab::load(c.data.spm_src.empty() ? c.data.spm_tgt : c.data.spm_src);
    auto tgt = data::Vocab::load(c.data.spm_tgt.empty() ? c.data.spm_src : c.data.spm_tgt);
    return {src, tgt};
  }
  fs::create_directories(dir);
  auto train_spm = [&](std::vector<std::string> inputs, const std::string& model_name) {
    data::SpmTrainOptions o;
    o.input_files = std::move(inputs);
    o.model_prefix = (fs::path(dir) / model_name).string();
    if (reuse && fs::exists(o.model_prefix + ".model")) return data::Vocab::load(o.model_prefix + ".model");
    // SentencePiece aborts the process on a corpus without text: say which file instead.
    for (const auto& file : o.input_files) {
      const auto lines = data::read_lines(file);
      if (std::none_of(lines.begin(), lines.end(), [](const std::string& l) {
            return l.find_first_not_of(" \t\r\n\v\f") != std::string::npos;
          }))
        throw std::runtime_error(file + ": no line with text to train the SentencePiece model on "
                                 "(the file is empty or blank)");
    }
    o.vocab_size = c.data.vocab_size;
    o.model_type = c.data.vocab_type;
    o.character_coverage = c.data.character_coverage;
    o.num_threads = resolve_threads(c.train.threads);
    o.hard_vocab_limit = false;  // a toy corpus may not support the requested size
    spdlog::info("training SentencePiece {} model '{}' (vocabulary {}) on {}", o.model_type, model_name,
                 o.vocab_size, fmt::join(o.input_files, ", "));
    data::train_sentencepiece(o);
    return data::Vocab::load(o.model_prefix + ".model");
  };
  if (c.data.joint_vocab) {
    auto joint = train_spm({c.data.train_src, c.data.train_tgt}, name);
    return {joint, joint};
  }
  return {train_spm({c.data.train_src}, name + "_src"), train_spm({c.data.train_tgt}, name + "_tgt")};
}

std::unique_ptr<FusedAdam> make_optimizer(models::Seq2SeqImpl& model, const TrainConfig& c) {
  torch::optim::AdamOptions opts(c.lr);
  opts.betas({c.beta1, c.beta2}).weight_decay(c.weight_decay);
  return std::make_unique<FusedAdam>(model.parameters(), opts);
}

UpdateStats train_update(models::Seq2SeqImpl& model, FusedAdam& optimizer,
                         const std::vector<data::Batch>& batches, const TrainConfig& c, double lr,
                         DataParallel* parallel, Precision precision) {
  UpdateStats stats;
  model.set_output_layer_for_loss(true);  // the loss forms the logits of real positions only: no [B, T, V] log-softmax
  optimizer.clear_gradients();
  for (const auto& batch : batches) stats.tgt_tokens += batch.num_tgt_tokens;
  stats.update_tgt_tokens = stats.tgt_tokens;
  if (parallel) {
    auto count = torch::tensor({static_cast<double>(stats.tgt_tokens)}, torch::kFloat64);
    parallel->group.all_reduce_sum(count);
    stats.update_tgt_tokens = static_cast<int64_t>(count.item<double>());
  }
  const double tokens = static_cast<double>(std::max<int64_t>(1, stats.update_tgt_tokens));
  for (size_t i = 0; i < batches.size(); ++i) {
    const auto& batch = batches[i];
    LossOutput loss;
    at::Tensor total;
    {
      AutocastGuard autocast(precision, batch.src.device());  // forward and loss only
      auto out = model.forward(batch);
      loss = token_loss(out, batch.tgt_out, c.label_smoothing);
      total = out.aux_loss.defined() ? loss.loss + out.aux_loss : loss.loss;
    }
    if (parallel && i + 1 == batches.size()) parallel->reducer.prepare();
    (total / tokens).backward();
    stats.loss += loss.loss.item<double>();
    stats.nll += loss.nll.item<double>();
  }
  if (parallel) {
    if (batches.empty()) parallel->reducer.prepare();
    parallel->reducer.finish();
  }
  const double grad_scale = c.clip_norm > 0 ? clip_factor(gradient_norm(model.parameters()), c.clip_norm) : 1.0;
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  optimizer.step_scaled(grad_scale);
  return stats;
}

}  // namespace nmt::train
