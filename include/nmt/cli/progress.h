#pragma once
/// @file progress.h
/// A progress line on standard error for long-running commands (`translate`).
#include <chrono>
#include <cstdint>

namespace nmt::cli {

/// "\r  120/1000 sentences, 35.2 sentences/s, ETA 0:00:25" (total known) or
/// "\r  120 sentences, 35.2 sentences/s" (unknown), redrawn at most 5 times a second and only
/// when enabled (by default: when stderr is a terminal, so logs and pipes stay clean).
class ProgressLine {
 public:
  /// `total` < 0: unknown.
  explicit ProgressLine(int64_t total, bool enabled = stderr_is_terminal());
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  /// `done` sentences so far.
  void update(int64_t done);
  /// Draws the last state and ends the line (also done by the destructor).
  void finish();

  static bool stderr_is_terminal();

 private:
  void draw(int64_t done);
  int64_t total_;
  bool enabled_, drawn_ = false, finished_ = false;
  int64_t done_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace nmt::cli
