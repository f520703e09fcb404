#include "nmt/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace nmt::cli {

bool ProgressLine::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressLine::ProgressLine(int64_t total, bool enabled)
    : total_(total), enabled_(enabled), start_(std::chrono::steady_clock::now()), last_(start_) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(int64_t done) {
  done_ = done;
  const auto now = std::chrono::steady_clock::now();
  if (!enabled_ || (drawn_ && now - last_ < std::chrono::milliseconds(200))) return;
  last_ = now;
  draw(done);
}

void ProgressLine::finish() {
  if (finished_ || !enabled_) return;
  finished_ = true;
  draw(done_);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void ProgressLine::draw(int64_t done) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? done / seconds : 0.0;
  std::string line = total_ >= 0 ? fmt::format("{}/{} sentences", done, total_) : fmt::format("{} sentences", done);
  line += fmt::format(", {:.1f} sentences/s", rate);
  if (total_ >= 0 && rate > 0) {
    const auto eta = static_cast<int64_t>(std::max<int64_t>(0, total_ - done) / rate);
    line += fmt::format(", ETA {}:{:02d}:{:02d}", eta / 3600, (eta / 60) % 60, eta % 60);
  }
  fmt::print(stderr, "\r{:<60}", line);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace nmt::cli
