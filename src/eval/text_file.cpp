/// @file text_file.cpp
#include "nmt/eval/text_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nmt/eval/unicode.h"

namespace nmt::eval {
namespace {

void check_and_strip(std::string& line, const std::string& origin, size_t line_number) {
  const size_t bad = find_invalid_utf8(line);
  if (bad != std::string::npos) {
    throw std::runtime_error("invalid UTF-8 in " + origin + " at line " +
                             std::to_string(line_number) + " (byte " + std::to_string(bad + 1) +
                             " of the line)");
  }
  line.resize(utf8_rstrip(line).size());
}

}  // namespace

std::vector<std::string> read_text_lines(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::runtime_error("'" + path + "' is a directory, expected a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open file '" + path + "': " + std::strerror(errno));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string content = buffer.str();
  std::vector<std::string> lines;
  const std::string origin = "'" + path + "'";
  size_t start = 0;
  while (start < content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string::npos) end = content.size();
    lines.emplace_back(content, start, end - start);
    check_and_strip(lines.back(), origin, lines.size());
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> clean_lines(std::vector<std::string> lines, const std::string& origin) {
  for (size_t i = 0; i < lines.size(); ++i) check_and_strip(lines[i], origin, i + 1);
  return lines;
}

}  // namespace nmt::eval
