// The model library's entry point (libnmt_commands.so): every subcommand, on LibTorch.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "nmt/cli/bench_cmd.h"
#include "nmt/cli/command_list.h"
#include "nmt/cli/commands.h"
#include "nmt/cli/eval_cmd.h"
#include "nmt/cli/model_io.h"
#include "nmt/cli/model_library.h"
#include "nmt/runtime.h"

extern "C" __attribute__((visibility("default"))) int nmt_commands_main(int argc, char** argv) {
  nmt::tune_process(argv);
  CLI::App app{"nmt: neural machine translation (RNN attention, Transformer, ConvS2S) on LibTorch"};
  app.set_version_flag("--version", NMT_VERSION);
  app.require_subcommand(1);
  nmt::cli::setup_logging(false);
  app.add_flag_callback("-v,--verbose", [] { nmt::cli::setup_logging(true); }, "debug logging");
  nmt::cli::setup_train(app);
  nmt::cli::setup_preprocess(app);
  nmt::cli::setup_translate(app);
  nmt::cli::setup_serve(app);
  nmt::cli::setup_align(app);
  nmt::cli::setup_info(app);
  nmt::cli::setup_average(app);
  nmt::cli::setup_eval(app, nmt::cli::translate_file);
  nmt::cli::setup_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const nmt::cli::ExitStatus& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
