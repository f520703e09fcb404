#include "nmt/library_paths.h"

#include <cstdlib>
#include <filesystem>

namespace nmt {

std::vector<std::string> library_paths(const char* env_var, const std::string& file_name,
                                       const std::string& build_path) {
  std::vector<std::string> paths;
  if (const char* env = std::getenv(env_var); env && *env) paths.emplace_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) paths.push_back((exe.parent_path() / file_name).string());
  if (!build_path.empty()) paths.push_back(build_path);
  paths.push_back("/usr/local/lib/nmt/" + file_name);
  return paths;
}

}  // namespace nmt
