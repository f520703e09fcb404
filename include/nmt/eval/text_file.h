#pragma once
/// @file text_file.h
/// Reading evaluation files the way sacreBLEU's command line does: UTF-8, lines separated by
/// '\n' only, each line rstrip()ped of (Unicode) whitespace, no extra line after a final '\n'.
#include <string>
#include <vector>

namespace nmt::eval {

/// Reads and validates a text file. Throws std::runtime_error naming the file if it cannot be
/// opened, and naming the file and the 1-based line number if a line is not valid UTF-8.
std::vector<std::string> read_text_lines(const std::string& path);

/// Validates and rstrip()s lines that did not come from a file (e.g. model output); `origin`
/// names them in the error message.
std::vector<std::string> clean_lines(std::vector<std::string> lines, const std::string& origin);

}  // namespace nmt::eval
