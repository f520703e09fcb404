#pragma once
/// @file command_list.h
/// The subcommands of `nmt`, named once: the front end (src/cli/main.cpp) lists them in
/// `nmt --help` without loading the model library, and each `setup_*` registers its own under the
/// same description.
#include <string_view>

namespace nmt::cli {

struct CommandInfo {
  const char* name;
  const char* description;
};

/// Every subcommand, in the order `nmt --help` lists them.
inline constexpr CommandInfo kCommands[] = {
    {"train", "train a model from a YAML config"},
    {"preprocess", "build a config's SentencePiece models and binary training corpus in its model directory "
                   "ahead of `nmt train`"},
    {"translate", "translate raw text with a trained model"},
    {"serve", "serve a trained model over HTTP: POST /translate with JSON, concurrent requests batched together"},
    {"align", "draw a model's alignments of reference translations (prior and posterior for variational "
              "attention)"},
    {"info", "show what a checkpoint holds (training state, model, vocabularies) and a digest of its weights"},
    {"average", "average the weights of checkpoints of one run into a new model directory"},
    {"eval", "Score translations with BLEU/chrF exactly as sacreBLEU 2.x"},
    {"bench", "measure training and translation speed of a config on this machine"},
};

/// The description of subcommand `name`; throws std::logic_error for a name not in kCommands.
const char* command_description(std::string_view name);

/// Sets up logging to stderr; `verbose` adds debug messages.
void setup_logging(bool verbose);

}  // namespace nmt::cli
