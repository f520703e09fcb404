#pragma once
/// @file commands.h
/// The subcommands of the `nmt` program; each registers its options and callback on `app`.
#include <CLI/CLI.hpp>

namespace nmt::cli {

void setup_train(CLI::App& app);
/// `nmt preprocess -c CONFIG`: SentencePiece models and the binary training corpus, ahead of training.
void setup_preprocess(CLI::App& app);
void setup_translate(CLI::App& app);
void setup_align(CLI::App& app);
/// Sets up logging to stderr; `verbose` adds debug messages.
void setup_logging(bool verbose);

}  // namespace nmt::cli
