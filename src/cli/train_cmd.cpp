#include <filesystem>
#include <memory>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "nmt/cli/command_list.h"
#include "nmt/cli/commands.h"
#include "nmt/cli/launch.h"
#include "nmt/cli/validators.h"
#include "nmt/config.h"
#include "nmt/runtime.h"
#include "nmt/io/checkpoint.h"
#include "nmt/train/run_guard.h"
#include "nmt/train/trainer.h"

namespace nmt::cli {
namespace {

struct TrainOptions {
  std::string config_file;
  std::vector<std::string> overrides;
  std::string resume_dir;
  int nproc = 1;
};

/// Ranks other than 0 log warnings and errors only, tagged with their rank, and not to train.log.
void quiet_unless_rank0(const train::DistributedEnv& env) {
  if (env.rank == 0) return;
  spdlog::set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S] [rank {}] [%^%l%$] %v", env.rank));
  spdlog::set_level(spdlog::level::warn);
}

/// train.threads 0 means all cores, shared among the processes of this machine.
int threads_for(int threads, const train::DistributedEnv& env) {
  if (threads > 0 || !env.active()) return threads;
  return std::max(1, resolve_threads(0) / env.local_world_size);
}

/// Log to stderr and to <model_dir>/train.log (appending, so a resumed run keeps its history).
void log_to_model_dir(const std::string& model_dir) {
  std::filesystem::create_directories(model_dir);
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(
      (std::filesystem::path(model_dir) / "train.log").string(), /*truncate=*/false);
  spdlog::default_logger()->sinks().push_back(file);
}

/// Takes the model directory's lock, logs to it and removes what killed runs left there
/// (rank 0 of a data-parallel run: the ranks share the directory).
std::unique_ptr<train::RunLock> claim_model_dir(const std::string& model_dir, const train::DistributedEnv& env) {
  if (env.rank != 0) return nullptr;
  auto lock = std::make_unique<train::RunLock>(model_dir);
  log_to_model_dir(model_dir);
  train::remove_stale_temporaries(model_dir);
  return lock;
}

void train_or_resume(const TrainOptions& o, const train::DistributedEnv& env) {
  if (!o.resume_dir.empty()) {
    if (!o.config_file.empty()) throw std::runtime_error("--resume takes the config stored in the model directory; drop -c");
    auto lock = claim_model_dir(o.resume_dir, env);
    auto ck = io::load_checkpoint((std::filesystem::path(o.resume_dir) / "last.pt").string(),
                                     c10::Device(c10::kCPU));
    apply_overrides(ck.config, o.overrides);
    setup_threads(threads_for(ck.config.train.threads, env));
    train::resume_training(std::move(ck), o.resume_dir, env);
    return;
  }
  Config config = o.config_file.empty() ? default_config() : load_config(o.config_file);
  apply_overrides(config, o.overrides);
  auto lock = claim_model_dir(config.train.model_dir, env);
  if (o.config_file.empty()) spdlog::info("no -c given: using the built-in Multi30k RNN config");
  spdlog::info("{} threads{}; config:\n{}", setup_threads(threads_for(config.train.threads, env)),
               env.active() ? fmt::format(" in each of {} processes", env.world_size) : "", to_yaml(config));
  train::train_new(config, env);
}

void run_train(const TrainOptions& o) {
  if (o.nproc > 1) {
    auto args = own_command_line();
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--nproc" && i + 1 < args.size()) {
        args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
        break;
      }
      if (args[i].rfind("--nproc=", 0) == 0) {
        args.erase(args.begin() + static_cast<long>(i));
        break;
      }
    }
    launch_local_ranks(o.nproc, args);
    return;
  }
  const auto env = distributed_env_from_environment();
  quiet_unless_rank0(env);
  train::install_stop_handlers();
  stop_with_launcher();
  train_or_resume(o, env);  // releases the lock before the program ends
  if (const int sig = train::stop_signal()) throw ExitStatus{128 + sig};
}

}  // namespace

void setup_preprocess(CLI::App& app) {
  auto opts = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("preprocess", command_description("preprocess"));
  cmd->add_option("-c,--config", opts->config_file, "YAML config")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", opts->overrides, "override a config value: section.key=value (repeatable)")
      ->allow_extra_args(false);
  cmd->callback([opts] {
    Config config = load_config(opts->config_file);
    apply_overrides(config, opts->overrides);
    setup_threads(config.train.threads);
    train::preprocess(config);
  });
}

void setup_train(CLI::App& app) {
  auto opts = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", command_description("train"));
  cmd->add_option("-c,--config", opts->config_file, "YAML config (default: built-in Multi30k RNN config)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", opts->overrides, "override a config value: section.key=value (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--resume", opts->resume_dir, "continue the run in this model directory")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--nproc", opts->nproc,
                  "run as N local data-parallel processes (one process with N x accum_steps batches per update)")
      ->check(positive_integer());
  cmd->callback([opts] { run_train(*opts); });
}

}  // namespace nmt::cli
