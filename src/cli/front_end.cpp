#include <string_view>

#include "nmt/cli/command_list.h"
#include "nmt/cli/model_library.h"

namespace nmt::cli {

bool needs_model_library(int argc, const char* const* argv) {
  int i = 1;
  while (i < argc && (std::string_view(argv[i]) == "-v" || std::string_view(argv[i]) == "--verbose")) ++i;
  if (i >= argc) return false;
  const std::string_view command = argv[i];
  if (command == "eval") {
    for (int j = i + 1; j < argc; ++j) {
      const std::string_view arg = argv[j];
      if (arg == "--") break;
      if (arg == "--model" || arg.substr(0, 8) == "--model=") return true;
      // -m, -mDIR, or -m inside a group of short flags (-bm); a false positive only costs speed
      if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-' && arg.find('m') != std::string_view::npos) return true;
    }
    return false;
  }
  for (const auto& known : kCommands) {
    if (command == known.name) return true;
  }
  return false;
}

}  // namespace nmt::cli
