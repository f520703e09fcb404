#include "nmt/data/corpus.h"

#include "nmt/data/line_stream.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace nmt::data {

namespace {

/// Length of the valid UTF-8 prefix of `s` (s.size() when all of it is valid). Rejects overlong
/// forms, surrogates and code points above U+10FFFF.
size_t valid_utf8_prefix(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return n;
}

bool is_blank(const std::string& s) {
  for (char c : s)
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')) {
      // U+00A0 (no-break space) is blank too.
      if (static_cast<unsigned char>(c) == 0xC2 || static_cast<unsigned char>(c) == 0xA0) continue;
      return false;
    }
  return true;
}

}  // namespace

namespace {

std::ifstream open_text_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw std::runtime_error(path + ": is a directory, expected a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  return in;
}

}  // namespace

void clean_line(std::string& line, const std::string& origin, size_t number) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
  if (const size_t ok = valid_utf8_prefix(line); ok != line.size()) {
    std::ostringstream msg;
    msg << origin << ":" << number << ": invalid UTF-8 at byte " << ok + 1 << " of the line (byte 0x" << std::hex
        << static_cast<int>(static_cast<unsigned char>(line[ok])) << ")";
    throw std::runtime_error(msg.str());
  }
}

std::vector<std::string> read_lines(const std::string& path) {
  auto in = open_text_file(path);
  return read_lines(in, path);
}

std::vector<std::string> read_lines(std::istream& in, const std::string& origin) {
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    clean_line(line, origin, lines.size() + 1);
    lines.push_back(std::move(line));
    line.clear();
  }
  if (in.bad()) throw std::runtime_error("error while reading " + origin);
  return lines;
}

LineReader::LineReader(const std::string& path) : in_(open_text_file(path)), path_(path) {}

bool LineReader::next(std::string& line) {
  if (!std::getline(in_, line)) {
    if (in_.bad()) throw std::runtime_error("error while reading " + path_);
    return false;
  }
  clean_line(line, path_, ++count_);
  return true;
}

ParallelText read_parallel(const std::string& src_path, const std::string& tgt_path) {
  ParallelText t;
  t.src = read_lines(src_path);
  t.tgt = read_lines(tgt_path);
  t.src_path = src_path;
  t.tgt_path = tgt_path;
  if (t.src.size() != t.tgt.size())
    throw std::runtime_error("parallel files differ in length: " + src_path + " has " +
                             std::to_string(t.src.size()) + " lines, " + tgt_path + " has " +
                             std::to_string(t.tgt.size()));
  return t;
}

PairFilter filter_pair(const std::string& src, const std::string& tgt, const std::vector<int64_t>& src_ids,
                       const std::vector<int64_t>& tgt_ids, int max_len) {
  if (is_blank(src) || is_blank(tgt) || src_ids.empty() || tgt_ids.empty()) return PairFilter::Empty;
  if (max_len > 0 && (src_ids.size() > static_cast<size_t>(max_len) || tgt_ids.size() > static_cast<size_t>(max_len)))
    return PairFilter::TooLong;
  return PairFilter::Keep;
}

std::vector<Example> encode_corpus(const ParallelText& text, const Vocab& src_vocab,
                                   const Vocab& tgt_vocab, int max_len, FilterStats* stats) {
  if (text.src.size() != text.tgt.size())
    throw std::invalid_argument("encode_corpus: " + std::to_string(text.src.size()) +
                                " source lines but " + std::to_string(text.tgt.size()) +
                                " target lines");
  auto src_ids = src_vocab.encode_batch(text.src);
  auto tgt_ids = tgt_vocab.encode_batch(text.tgt);
  FilterStats s;
  s.total = text.size();
  std::vector<Example> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto verdict = filter_pair(text.src[i], text.tgt[i], src_ids[i], tgt_ids[i], max_len);
    if (verdict == PairFilter::Empty) ++s.empty;
    if (verdict == PairFilter::TooLong) ++s.too_long;
    if (verdict != PairFilter::Keep) continue;
    Example e;
    e.src = std::move(src_ids[i]);
    e.tgt = std::move(tgt_ids[i]);
    e.index = i;
    out.push_back(std::move(e));
  }
  s.kept = out.size();
  spdlog::info("{} / {}: kept {} of {} pairs ({} empty, {} longer than {} tokens)", text.src_path,
               text.tgt_path, s.kept, s.total, s.empty, s.too_long, max_len);
  if (stats) *stats = s;
  return out;
}

}  // namespace nmt::data
