// libFuzzer target: the config loader on arbitrary YAML text (a config file, a --set value or
// the config stored in a checkpoint). The only accepted failure is a ConfigError; a config that
// loads must write out and load again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "nmt/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nmt::Config config;
  try {
    config = nmt::parse_config(text, "fuzz input");
  } catch (const nmt::ConfigError&) {
    return 0;
  }
  nmt::parse_config(nmt::to_yaml(config), "round trip");  // must not throw
  return 0;
}
