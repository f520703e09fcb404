#pragma once
// Helpers shared by the tests: temporary directories, running the nmt binary.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace nmt::testing {

/// A fresh directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nmt_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Absolute path of a file in the source tree.
inline std::string source_path(const std::string& relative) {
  return (std::filesystem::path(NMT_SOURCE_DIR) / relative).string();
}

struct CommandResult {
  int exit_code;
  std::string output;  ///< stdout and stderr together
};

/// Run `script` with /bin/sh from the source directory; `$NMT` names the built binary there.
inline CommandResult run_shell(const std::string& script) {
  const std::string cmd = "cd '" + std::string(NMT_SOURCE_DIR) + "' && NMT='" + NMT_BINARY + "' && { " + script +
                          "\n} 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// Run the built `nmt` binary with `args` (a shell-quoted string) from the source directory.
inline CommandResult run_nmt(const std::string& args) { return run_shell("\"$NMT\" " + args); }

/// Extra `nmt train` arguments for the learning tests from $NMT_TEST_TRAIN_OVERRIDES (empty when
/// unset). With e.g. "--set train.lr=1e-9" a model cannot learn, and every learning test must
/// then fail: that shows their bounds are not loose enough to pass without learning.
inline std::string learning_overrides() {
  const char* extra = std::getenv("NMT_TEST_TRAIN_OVERRIDES");
  return extra ? std::string(" ") + extra : std::string();
}

/// Width and height from a PNG's IHDR chunk (big-endian, bytes 16..23).
inline std::pair<int, int> png_size(const std::string& bytes) {
  auto be32 = [&](size_t at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) | (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) | static_cast<unsigned char>(bytes[at + 3]);
  };
  return {be32(16), be32(20)};
}

/// The lines of `text`, without their '\n'.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// The corpus BLEU printed by `nmt eval` ("BLEU = 12.34 ..."), or -1 when there is none.
inline double bleu_of(const std::string& eval_output) {
  std::smatch m;
  if (!std::regex_search(eval_output, m, std::regex("BLEU = ([0-9.]+)"))) return -1;
  return std::stod(m[1]);
}

}  // namespace nmt::testing
