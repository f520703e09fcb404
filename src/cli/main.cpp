// nmt: neural machine translation — train, translate, eval.
//
// The front end (see nmt/cli/model_library.h): `--help`, `--version` and `eval` without a model
// run here, without LibTorch; every other command runs in the model library, loaded on demand.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "nmt/cli/command_list.h"
#include "nmt/cli/eval_cmd.h"
#include "nmt/cli/model_library.h"
#include "nmt/library_paths.h"
#include "nmt/openmp_env.h"

namespace {

std::vector<std::string> model_library_paths() {
  return nmt::library_paths("NMT_COMMANDS_LIB", "libnmt_commands.so", NMT_COMMANDS_BUILD_PATH);
}

int run_in_model_library(int argc, char** argv) {
  // libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT, and OpenBLAS OPENBLAS_THREAD_TIMEOUT, when
  // they are loaded, which is now: briefly spinning OpenMP workers and OpenBLAS threads that
  // sleep after a product (nmt/openmp_env.h), without re-executing the program
  // (nmt::tune_process sees NMT_NO_REEXEC and does not).
  nmt::set_thread_waiting();
  setenv("NMT_NO_REEXEC", "1", 1);
  std::string tried;
  for (const auto& path : model_library_paths()) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      tried += "\n  " + path + ": " + dlerror();
      continue;
    }
    using Entry = int (*)(int, char**);
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "nmt_commands_main"));
    if (!entry) {
      std::fprintf(stderr, "error: %s lacks nmt_commands_main (stale build? rebuild target nmt_commands)\n",
                   path.c_str());
      return 1;
    }
    return entry(argc, argv);
  }
  std::fprintf(stderr, "error: cannot load the model library libnmt_commands.so (set NMT_COMMANDS_LIB); tried:%s\n",
               tried.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (nmt::cli::needs_model_library(argc, argv)) return run_in_model_library(argc, argv);
  CLI::App app{"nmt: neural machine translation (RNN attention, Transformer, ConvS2S) on LibTorch"};
  app.set_version_flag("--version", NMT_VERSION);
  app.require_subcommand(1);
  nmt::cli::setup_logging(false);
  app.add_flag_callback("-v,--verbose", [] { nmt::cli::setup_logging(true); }, "debug logging");
  for (const auto& command : nmt::cli::kCommands) {
    // All are listed for --help; only `eval` runs here (needs_model_library() sent the others,
    // and eval -m/--model, to the model library).
    if (std::string(command.name) == "eval") {
      nmt::cli::setup_eval(app, {});
    } else {
      app.add_subcommand(command.name, command.description);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
