#include "nmt/cli/command_list.h"

#include <stdexcept>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace nmt::cli {

const char* command_description(std::string_view name) {
  for (const auto& command : kCommands) {
    if (name == command.name) return command.description;
  }
  throw std::logic_error("no subcommand '" + std::string(name) + "' in kCommands");
}

void setup_logging(bool verbose) {
  // Called again by -v/--verbose: the "nmt" logger may exist already (a second registration throws).
  auto logger = spdlog::get("nmt");
  if (!logger) logger = spdlog::stderr_color_mt("nmt");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace nmt::cli
