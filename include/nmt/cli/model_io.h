#pragma once
/// @file model_io.h
/// Loading a trained model directory for inference, shared by `translate`, `eval -m`, `align`
/// and `bench`.
#include <string>
#include <vector>

#include "nmt/io/checkpoint.h"
#include "nmt/search/translator.h"

namespace nmt::cli {

/// A model ready to translate: its checkpoint (best.pt, else last.pt; config and training
/// state) and a Translator over its model, in eval mode on its device, with the stored search
/// settings.
struct LoadedModel {
  io::Checkpoint checkpoint;
  search::Translator translator;
};

/// Load `model_dir` and set up threads/device/precision from its stored config (overridable by
/// `threads` > 0, a non-empty `device` and a non-empty `precision`: auto | fp32 | bf16, resolved
/// by choose_precision and logged, or int8: the linear layers in int8, Seq2SeqImpl::set_int8).
/// Throws std::runtime_error naming the directory, or for int8 on a GPU or without an int8
/// engine; ConfigError for a bad precision.
LoadedModel load_model(const std::string& model_dir, int threads = 0, const std::string& device = "",
                       const std::string& precision = "");

/// An ensemble of `model_dirs` (models::EnsembleImpl; one directory: that model alone, as
/// load_model) with `weights` (one per model, or empty: equal). The checkpoint, threads, device,
/// precision and search settings are the first model's. Throws std::runtime_error naming the
/// directory whose source or target vocabulary differs from the first one's, or when the weights
/// do not match the models.
LoadedModel load_ensemble(const std::vector<std::string>& model_dirs, const std::vector<double>& weights,
                          int threads = 0, const std::string& device = "", const std::string& precision = "");

/// Command-line overrides of a model's stored search settings (`--beam`, `--length-penalty`,
/// `--batch-tokens`, `--batch-sentences`): beam and batch_tokens <= 0, length_penalty and
/// batch_sentences < 0 keep the stored value (batch_sentences 0: no limit).
void override_search(SearchConfig& search, int beam, double length_penalty, int batch_tokens,
                     int batch_sentences = -1);

/// Translate every line of `src_file` with the model's stored search settings.
std::vector<std::string> translate_file(const std::string& model_dir, const std::string& src_file);

}  // namespace nmt::cli
