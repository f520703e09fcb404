#pragma once
/// @file library_paths.h
/// Where `nmt` looks for the shared libraries it loads with dlopen (the SentencePiece shim
/// libnmt_spm.so, the model library libnmt_commands.so). No LibTorch here: the front end uses it.
#include <string>
#include <vector>

namespace nmt {

/// In this order: $`env_var` when set and non-empty, `file_name` next to the running executable,
/// `build_path` (the build tree's copy; skipped when empty), /usr/local/lib/nmt/`file_name`.
std::vector<std::string> library_paths(const char* env_var, const std::string& file_name,
                                       const std::string& build_path);

}  // namespace nmt
