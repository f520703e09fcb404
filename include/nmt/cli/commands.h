#pragma once
/// @file commands.h
/// The subcommands of the `nmt` program; each registers its options and callback on `app`.
#include <CLI/CLI.hpp>

namespace nmt::cli {

/// Thrown by a subcommand whose program must end with exit status `code` (after its clean-up
/// ran), e.g. 130 or 143 when a training run was stopped by SIGINT or SIGTERM.
struct ExitStatus {
  int code;
};

void setup_train(CLI::App& app);
/// `nmt preprocess -c CONFIG`: SentencePiece models and the binary training corpus, ahead of training.
void setup_preprocess(CLI::App& app);
void setup_translate(CLI::App& app);
/// `nmt serve -m MODEL_DIR [--port P]`: an HTTP JSON translation server (POST /translate, GET /health).
void setup_serve(CLI::App& app);
/// `nmt average -o OUT_DIR INPUT... [--last N]`: checkpoint averaging into a new model directory.
void setup_average(CLI::App& app);
/// `nmt info -m MODEL_DIR|CHECKPOINT`: training state, model size, vocabularies, weights digest.
void setup_info(CLI::App& app);
void setup_align(CLI::App& app);

}  // namespace nmt::cli
