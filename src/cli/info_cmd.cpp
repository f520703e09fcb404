// `nmt info -m MODEL_DIR|CHECKPOINT`: what a checkpoint holds, and a digest of its weights.
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "nmt/cli/command_list.h"
#include "nmt/cli/commands.h"
#include "nmt/config.h"
#include "nmt/io/checkpoint.h"

namespace nmt::cli {

void setup_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("info", command_description("info"));
  cmd->add_option("-m,--model", *path, "model directory (best.pt, else last.pt) or checkpoint file")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->callback([path] {
    const std::string file = std::filesystem::is_directory(*path) ? io::find_checkpoint(*path) : *path;
    auto ck = io::load_checkpoint(file, c10::Device(c10::kCPU));
    int64_t params = 0;
    for (const auto& p : ck.model->parameters()) params += p.numel();
    const auto& s = ck.state;
    fmt::print("checkpoint: {}\n", file);
    fmt::print("training: step {}, epoch {} (batch {}), {:.0f} s; best step {}\n", s.step, s.epoch, s.batch_in_epoch,
               s.elapsed_seconds, s.best_step);
    fmt::print("model: {}, {} parameters; vocabulary {} (src) / {} (tgt)\n", model_type_name(ck.config.model.type), params,
               ck.src_vocab.size(), ck.tgt_vocab.size());
    fmt::print("weights digest: {:016x}\n", io::weights_digest(*ck.model));
    if (ck.ema)
      fmt::print("moving average (train.ema_decay {}, used by translate) digest: {:016x}\n", ck.config.train.ema_decay,
                 io::weights_digest(*ck.ema));
  });
}

}  // namespace nmt::cli
