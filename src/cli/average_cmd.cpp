// `nmt average -o OUT_DIR INPUT... [--last N] [--trained-weights]`: checkpoint averaging.
#include <filesystem>
#include <memory>

#include <spdlog/spdlog.h>

#include "nmt/cli/command_list.h"
#include "nmt/cli/commands.h"
#include "nmt/cli/validators.h"
#include "nmt/config.h"
#include "nmt/runtime.h"
#include "nmt/io/checkpoint.h"

namespace nmt::cli {
namespace {

struct AverageOptions {
  std::vector<std::string> inputs;
  std::string output;
  int last = 0;
  bool trained_weights = false;
};

void run_average(const AverageOptions& o) {
  namespace fs = std::filesystem;
  std::vector<std::string> paths;
  if (o.last > 0) {
    if (o.inputs.size() != 1 || !fs::is_directory(o.inputs[0]))
      throw std::runtime_error("--last takes one model directory (trained with train.keep_checkpoints)");
    auto all = io::numbered_checkpoints(o.inputs[0]);
    if (all.empty())
      throw std::runtime_error(o.inputs[0] + ": no step-<N>.pt checkpoints (train with train.keep_checkpoints > 0)");
    if (static_cast<int>(all.size()) < o.last)
      spdlog::warn("{} holds {} numbered checkpoints, fewer than --last {}: averaging all of them", o.inputs[0],
                   all.size(), o.last);
    const size_t from = all.size() > static_cast<size_t>(o.last) ? all.size() - o.last : 0;
    paths.assign(all.begin() + static_cast<long>(from), all.end());
  } else {
    for (const auto& in : o.inputs) paths.push_back(fs::is_directory(in) ? io::find_checkpoint(in) : in);
  }
  const fs::path out = o.output;
  if (fs::exists(out / "best.pt"))
    throw std::runtime_error(o.output + " already holds a model (best.pt): choose another -o");
  auto ck = io::average_checkpoints(paths, o.trained_weights);
  ck.config.train.model_dir = o.output;
  fs::create_directories(out);
  write_file_atomic((out / "config.yaml").string(), to_yaml(ck.config));
  io::save_checkpoint((out / "best.pt").string(), ck, nullptr);
  spdlog::info("averaged {} checkpoints ({}) into {}", paths.size(),
               o.trained_weights ? "their trained weights" : "the weights each translates with",
               (out / "best.pt").string());
  for (const auto& p : paths) spdlog::info("  {}", p);
}

}  // namespace

void setup_average(CLI::App& app) {
  auto opts = std::make_shared<AverageOptions>();
  auto* cmd = app.add_subcommand("average", command_description("average"));
  cmd->add_option("inputs", opts->inputs, "checkpoint files or model directories (best.pt, else last.pt)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("-o,--output", opts->output, "model directory to write (best.pt and config.yaml)")->required();
  cmd->add_option("--last", opts->last,
                  "average the last N numbered checkpoints (step-<N>.pt, see train.keep_checkpoints) of the one "
                  "model directory given")
      ->check(positive_integer());
  cmd->add_flag("--trained-weights", opts->trained_weights,
                "average the trained weights, not the moving averages of train.ema_decay; the output keeps no "
                "moving average (one checkpoint: that checkpoint's trained weights alone)");
  cmd->callback([opts] { run_average(*opts); });
}

}  // namespace nmt::cli
