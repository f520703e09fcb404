#pragma once
/// @file model_io.h
/// Loading a trained model directory for translation, shared by `translate` and `eval -m`.
#include <string>
#include <vector>

#include "nmt/precision.h"
#include "nmt/search/search.h"
#include "nmt/train/checkpoint.h"

namespace nmt::cli {

/// A model ready to translate: checkpoint (best.pt, else last.pt) in eval mode on its device.
struct LoadedModel {
  train::Checkpoint checkpoint;
  c10::Device device{c10::kCPU};
  Precision precision = Precision::kFp32;  ///< decode under AutocastGuard(precision, device)
};

/// Load `model_dir` and set up threads/device/precision from its stored config (overridable by
/// `threads` > 0, a non-empty `device` and a non-empty `precision`: auto | fp32 | bf16, resolved
/// by choose_precision and logged). Throws std::runtime_error naming the directory, ConfigError
/// for a bad precision.
LoadedModel load_model(const std::string& model_dir, int threads = 0, const std::string& device = "",
                       const std::string& precision = "");

/// Translate every line of `src_file` with the model's stored search settings.
std::vector<std::string> translate_file(const std::string& model_dir, const std::string& src_file);

}  // namespace nmt::cli
