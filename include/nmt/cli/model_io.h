#pragma once
/// @file model_io.h
/// Loading a trained model directory for translation, shared by `translate` and `eval -m`.
#include <string>
#include <vector>

#include "nmt/search/search.h"
#include "nmt/train/checkpoint.h"

namespace nmt::cli {

/// A model ready to translate: checkpoint (best.pt, else last.pt) in eval mode on its device.
struct LoadedModel {
  train::Checkpoint checkpoint;
  c10::Device device{c10::kCPU};
};

/// Load `model_dir` and set up threads/device from its stored config (overridable by
/// `threads` > 0 and a non-empty `device`). Throws std::runtime_error naming the directory.
LoadedModel load_model(const std::string& model_dir, int threads = 0, const std::string& device = "");

/// Translate every line of `src_file` with the model's stored search settings.
std::vector<std::string> translate_file(const std::string& model_dir, const std::string& src_file);

}  // namespace nmt::cli
