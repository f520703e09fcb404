#include "nmt/data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nmt/runtime.h"

namespace nmt::data {
namespace {

constexpr char kMagic[8] = {'N', 'M', 'T', 'T', 'O', 'K', '0', '1'};

struct Header {
  char magic[8];
  uint64_t pairs;
  uint64_t index_offset;  ///< bytes from the start of the file
  uint64_t tokens;        ///< int32 ids after the header
  uint64_t lines;         ///< corpus lines read (kept or not)
  uint64_t reserved[3];
};
static_assert(sizeof(Header) == 64, "the header is 64 bytes");

uint64_t fnv1a(uint64_t h, const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

struct TokenCorpus::Entry {
  uint64_t offset;  ///< first source id, in int32 units after the header
  uint32_t src_len;
  uint32_t tgt_len;
  uint64_t line;
};
static_assert(sizeof(TokenCorpus::Entry) == 24, "an index entry is 24 bytes");

TokenCorpus::TokenCorpus(const std::string& path, int64_t src_vocab_size, int64_t tgt_vocab_size) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open token file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(path + ": not a regular file, expected an nmt token file");
  }
  bytes_ = static_cast<size_t>(st.st_size);
  auto bad = [&](const std::string& what) {
    throw std::runtime_error(path + ": not a valid nmt token file (" + what + "); delete it to rebuild it");
  };
  if (bytes_ < sizeof(Header)) {
    ::close(fd);
    bad("shorter than its header");
  }
  void* map = ::mmap(nullptr, bytes_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw std::runtime_error("cannot map token file " + path + ": " + std::strerror(errno));
  map_ = static_cast<const char*>(map);
  ::madvise(map, bytes_, MADV_SEQUENTIAL);  // the check below reads it front to back
  try {
    Header h;
    std::memcpy(&h, map_, sizeof h);
    if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) bad("wrong magic number");
    const uint64_t token_end = sizeof(Header) + h.tokens * sizeof(int32_t);
    if (h.tokens > bytes_ || h.index_offset != token_end || h.pairs > bytes_ ||
        h.index_offset + h.pairs * sizeof(Entry) != bytes_)
      bad("sizes in the header do not match the file's " + std::to_string(bytes_) + " bytes");
    pairs_ = h.pairs;
    tokens_ = reinterpret_cast<const int32_t*>(map_ + sizeof(Header));
    index_ = map_ + h.index_offset;
    // The check reads the whole file once: release what it has read as it goes, so that a
    // large corpus is never resident all at once.
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    auto release = [&](const void* from, const void* to) {
      const auto begin = reinterpret_cast<uintptr_t>(from) / page * page;
      const auto end = reinterpret_cast<uintptr_t>(to) / page * page;
      if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    };
    for (size_t i = 0; i < pairs_; ++i) {
      if (i % (1 << 20) == 0 && i > 0) {
        release(tokens_, tokens_ + entry(i - 1).offset);
        release(index_, index_ + (i - 1) * sizeof(Entry));
      }
      const Entry e = entry(i);
      const uint64_t length = uint64_t{e.src_len} + e.tgt_len;  // no sum here may wrap around
      if (e.src_len == 0 || e.tgt_len == 0 || e.offset > h.tokens || length > h.tokens - e.offset)
        bad(fmt::format("pair {} lies outside the token area", i));
      for (uint64_t k = 0; k < length; ++k) {
        const int32_t id = tokens_[e.offset + k];
        if (id < 0 || id >= (k < e.src_len ? src_vocab_size : tgt_vocab_size))
          bad(fmt::format("pair {} (line {}) has id {} outside the vocabulary", i, e.line + 1, id));
      }
    }
  } catch (...) {
    ::munmap(const_cast<char*>(map_), bytes_);
    map_ = nullptr;
    throw;
  }
  ::madvise(map, bytes_, MADV_DONTNEED);  // the rest of what the check read
  ::madvise(map, bytes_, MADV_RANDOM);    // training reads scattered pairs
}

TokenCorpus::~TokenCorpus() {
  if (map_) ::munmap(const_cast<char*>(map_), bytes_);
}

TokenCorpus::TokenCorpus(TokenCorpus&& o) noexcept { *this = std::move(o); }

TokenCorpus& TokenCorpus::operator=(TokenCorpus&& o) noexcept {
  if (this != &o) {
    if (map_) ::munmap(const_cast<char*>(map_), bytes_);
    path_ = std::move(o.path_);
    map_ = std::exchange(o.map_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    pairs_ = std::exchange(o.pairs_, 0);
    tokens_ = std::exchange(o.tokens_, nullptr);
    index_ = std::exchange(o.index_, nullptr);
  }
  return *this;
}

TokenCorpus::Entry TokenCorpus::entry(size_t i) const {
  Entry e;  // copied out: the index starts 4 bytes past an 8-byte boundary after an odd token count
  std::memcpy(&e, index_ + i * sizeof(Entry), sizeof e);
  return e;
}

Example TokenCorpus::example(size_t i) const {
  const Entry e = entry(i);
  const int32_t* p = tokens_ + e.offset;
  Example ex;
  ex.src.assign(p, p + e.src_len);
  ex.tgt.assign(p + e.src_len, p + e.src_len + e.tgt_len);
  ex.index = e.line;
  return ex;
}

std::vector<std::pair<uint32_t, uint32_t>> TokenCorpus::lengths() const {
  std::vector<std::pair<uint32_t, uint32_t>> out(pairs_);
  for (size_t i = 0; i < pairs_; ++i) out[i] = {entry(i).src_len, entry(i).tgt_len};
  return out;
}

FilterStats build_token_file(const std::string& src_path, const std::string& tgt_path, const Vocab& src_vocab,
                             const Vocab& tgt_vocab, int max_len, const std::string& out_path, size_t chunk_lines) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  LineReader src_in(src_path), tgt_in(tgt_path);
  AtomicFileWriter out(out_path);
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  out.write(&h, sizeof h);
  std::vector<TokenCorpus::Entry> index;  // 24 bytes a pair: the only per-pair memory
  FilterStats stats;
  std::vector<std::string> src, tgt;
  std::vector<int32_t> ids;
  for (;;) {
    src.clear();
    tgt.clear();
    std::string s, t;
    while (src.size() < chunk_lines) {
      const bool more_src = src_in.next(s), more_tgt = tgt_in.next(t);
      if (more_src != more_tgt)
        throw std::runtime_error(fmt::format("parallel files differ in length: {} has {} lines, {} has {}{}",
                                             src_path, src_in.lines_read(), tgt_path, tgt_in.lines_read(),
                                             more_src ? " or fewer" : " or more"));
      if (!more_src) break;
      src.push_back(std::move(s));
      tgt.push_back(std::move(t));
    }
    if (src.empty()) break;
    const auto src_ids = src_vocab.encode_batch(src);
    const auto tgt_ids = tgt_vocab.encode_batch(tgt);
    ids.clear();
    for (size_t i = 0; i < src.size(); ++i, ++stats.total) {
      const auto verdict = filter_pair(src[i], tgt[i], src_ids[i], tgt_ids[i], max_len);
      if (verdict == PairFilter::Empty) ++stats.empty;
      if (verdict == PairFilter::TooLong) ++stats.too_long;
      if (verdict != PairFilter::Keep) continue;
      index.push_back({h.tokens + ids.size(), static_cast<uint32_t>(src_ids[i].size()),
                       static_cast<uint32_t>(tgt_ids[i].size()), stats.total});
      ids.insert(ids.end(), src_ids[i].begin(), src_ids[i].end());
      ids.insert(ids.end(), tgt_ids[i].begin(), tgt_ids[i].end());
    }
    out.write(ids.data(), ids.size() * sizeof(int32_t));
    h.tokens += ids.size();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    spdlog::info("encoded {} pairs ({:.0f} pairs/s) into {}", stats.total, stats.total / std::max(dt, 1e-9),
                 out_path);
  }
  stats.kept = index.size();
  h.pairs = index.size();
  h.index_offset = out.written();
  h.lines = stats.total;
  out.write(index.data(), index.size() * sizeof(TokenCorpus::Entry));
  out.write_at(0, &h, sizeof h);
  out.commit();
  spdlog::info("{} / {}: kept {} of {} pairs ({} empty, {} longer than {} tokens); {} tokens, {:.1f} MB in {}",
               src_path, tgt_path, stats.kept, stats.total, stats.empty, stats.too_long, max_len, h.tokens,
               (h.index_offset + index.size() * sizeof(TokenCorpus::Entry)) / 1e6, out_path);
  return stats;
}

std::string token_file_name(const std::string& src_path, const std::string& tgt_path, const Vocab& src_vocab,
                            const Vocab& tgt_vocab, int max_len) {
  namespace fs = std::filesystem;
  uint64_t h = 14695981039346656037ull;
  for (const auto& path : {src_path, tgt_path}) {
    std::error_code ec;
    const auto canonical = fs::weakly_canonical(path, ec).string();
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    const int64_t facts[3] = {static_cast<int64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec),
                              static_cast<int64_t>(st.st_mtim.tv_nsec)};
    h = fnv1a(h, canonical.data(), canonical.size() + 1);
    h = fnv1a(h, facts, sizeof facts);
  }
  for (const Vocab* v : {&src_vocab, &tgt_vocab}) h = fnv1a(h, v->bytes().data(), v->bytes().size());
  h = fnv1a(h, &max_len, sizeof max_len);
  return fmt::format("corpus-{:016x}.tok", h);
}

}  // namespace nmt::data
