// Reading evaluation files like sacreBLEU's command line.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "support/test_util.h"
#include "nmt/eval/text_file.h"

using namespace nmt::eval;

namespace {
std::string write_temp(const std::string& name, const std::string& content) {
  // ctest runs each test in its own process, several at once: a directory of the process's own
  // keeps tests from overwriting one another's files.
  static const nmt::testing::TempDir dir;
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}
}  // namespace

TEST(EvalTextFile, LinesAreRstrippedWithoutATrailingEmptyLine) {
  const auto path = write_temp("lines.txt", "a b  \r\n\nc\u00a0\t\nlast");
  EXPECT_EQ(read_text_lines(path), (std::vector<std::string>{"a b", "", "c", "last"}));
  EXPECT_EQ(read_text_lines(write_temp("one.txt", "x\n")).size(), 1u);
  EXPECT_TRUE(read_text_lines(write_temp("empty.txt", "")).empty());
}

TEST(EvalTextFile, InvalidUtf8NamesFileAndLine) {
  const auto path = write_temp("bad.txt", "fine\nbad \xff here\n");
  try {
    read_text_lines(path);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(EvalTextFile, MissingFileIsNamed) {
  try {
    read_text_lines("/nonexistent/nmt_eval_missing.txt");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/nmt_eval_missing.txt"), std::string::npos);
  }
}

TEST(EvalTextFile, CleanLinesValidatesModelOutput) {
  EXPECT_EQ(clean_lines({"a ", "b"}, "model output"), (std::vector<std::string>{"a", "b"}));
  EXPECT_THROW(clean_lines({"\xc3"}, "model output"), std::runtime_error);
}
