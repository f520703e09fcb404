#pragma once
/// @file line_stream.h
/// Reading lines as they arrive, for `translate` on pipes and on inputs too large to hold.
#include <cstdint>
#include <string>

namespace nmt::data {

/// Lines from a file descriptor as they arrive (standard input, a pipe, a file), with
/// read_lines()'s rules: for answering line by line on an interactive pipe and for inputs too
/// large to hold. The descriptor is not owned (not closed).
class LineStream {
 public:
  /// `origin` names the input in error messages.
  LineStream(int fd, std::string origin);
  /// The next line into `line`; blocks until a whole line (or the end of input) is there; false at
  /// the end. Throws std::runtime_error naming the origin and line number for invalid UTF-8, and
  /// the origin for a read error.
  bool next(std::string& line);
  /// Whether next() would return without waiting: a whole line is buffered, or input (or its
  /// end) is waiting to be read.
  bool ready();
  size_t lines_read() const { return count_; }

 private:
  bool fill();  ///< one read(2) into the buffer; false at the end of input
  int fd_;
  std::string origin_, buf_;
  size_t pos_ = 0;  ///< start of the unread part of buf_
  bool eof_ = false;
  size_t count_ = 0;
};

/// Number of lines (as read_lines() counts them) of the regular file open at `fd`, read with
/// pread (the file offset is unchanged); -1 when `fd` is not a regular file (a pipe, a terminal).
int64_t count_lines(int fd);

/// Applies read_lines()'s rules (corpus.h) to line `number` (1-based) of `origin`: strips a
/// trailing '\r' and, on line 1, a UTF-8 BOM; throws std::runtime_error naming origin and line
/// for invalid UTF-8.
void clean_line(std::string& line, const std::string& origin, size_t number);

}  // namespace nmt::data
