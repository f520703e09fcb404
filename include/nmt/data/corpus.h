#pragma once
/// @file corpus.h
/// Reading line-aligned parallel text and encoding it into Examples.
#include <cstddef>
#include <fstream>
#include <istream>
#include <string>
#include <vector>

#include "nmt/data/batch.h"
#include "nmt/data/vocab.h"

namespace nmt::data {

/// Lines of `path`, one per `\n`-terminated line (a final line without `\n` counts; a final `\n`
/// does not start an empty line). A trailing `\r` is stripped and a leading UTF-8 BOM dropped;
/// everything else (TABs, U+00A0, repeated or trailing spaces) is kept verbatim.
/// Throws std::runtime_error naming the file when it is missing or unreadable, and naming the file
/// and the 1-based line number when a line is not valid UTF-8, and when `path` is a directory.
std::vector<std::string> read_lines(const std::string& path);

/// The same for a stream (e.g. std::cin); `origin` names it in error messages.
std::vector<std::string> read_lines(std::istream& in, const std::string& origin);

/// read_lines() one line at a time, for files too large to hold in memory.
class LineReader {
 public:
  /// Throws std::runtime_error naming the file when it is missing, unreadable or a directory.
  explicit LineReader(const std::string& path);
  /// The next line into `line` (read_lines()'s rules); false at the end. Throws
  /// std::runtime_error naming the file and line number for invalid UTF-8 or a read error.
  bool next(std::string& line);
  size_t lines_read() const { return count_; }

 private:
  std::ifstream in_;
  std::string path_;
  size_t count_ = 0;
};

/// Two line-aligned files: src[i] translates to tgt[i].
struct ParallelText {
  std::vector<std::string> src;
  std::vector<std::string> tgt;
  std::string src_path;
  std::string tgt_path;
  size_t size() const { return src.size(); }
};

/// Reads both files with read_lines(). Throws std::runtime_error naming both files and both line
/// counts when they differ.
ParallelText read_parallel(const std::string& src_path, const std::string& tgt_path);

/// What encode_corpus() kept and dropped. total = kept + empty + too_long.
struct FilterStats {
  size_t total = 0;     ///< pairs read
  size_t kept = 0;      ///< pairs returned
  size_t empty = 0;     ///< dropped: a side is empty after trimming (or encodes to no token)
  size_t too_long = 0;  ///< dropped: a side has more than max_len subword tokens
};

/// Whether encode_corpus() keeps an encoded pair (raw text and ids), and if not, why.
enum class PairFilter { Keep, Empty, TooLong };
PairFilter filter_pair(const std::string& src, const std::string& tgt, const std::vector<int64_t>& src_ids,
                       const std::vector<int64_t>& tgt_ids, int max_len);

/// Encodes every pair (src with src_vocab, tgt with tgt_vocab; no BOS/EOS) and drops pairs where
/// either side is empty or longer than `max_len` subword tokens (max_len <= 0: no limit).
/// Example::index is the pair's 0-based line number. `stats` (may be null) receives the counts.
/// Encoding runs through Vocab::encode_batch on all hardware threads.
std::vector<Example> encode_corpus(const ParallelText& text, const Vocab& src_vocab,
                                   const Vocab& tgt_vocab, int max_len,
                                   FilterStats* stats = nullptr);

}  // namespace nmt::data
