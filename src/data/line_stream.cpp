#include "nmt/data/line_stream.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace nmt::data {

LineStream::LineStream(int fd, std::string origin) : fd_(fd), origin_(std::move(origin)) {}

bool LineStream::fill() {
  if (eof_) return false;
  buf_.erase(0, pos_);
  pos_ = 0;
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("error while reading " + origin_ + ": " + std::strerror(errno));
    if (n == 0) {
      eof_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

bool LineStream::next(std::string& line) {
  size_t nl;
  while ((nl = buf_.find('\n', pos_)) == std::string::npos)
    if (!fill()) break;
  if (nl == std::string::npos) {  // the end of input: a last line without '\n', or nothing
    if (pos_ >= buf_.size()) return false;
    line.assign(buf_, pos_, std::string::npos);
    pos_ = buf_.size();
  } else {
    line.assign(buf_, pos_, nl - pos_);
    pos_ = nl + 1;
  }
  clean_line(line, origin_, ++count_);
  return true;
}

bool LineStream::ready() {
  if (eof_ || buf_.find('\n', pos_) != std::string::npos) return true;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

int64_t count_lines(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  int64_t lines = 0;
  char chunk[1 << 16];
  off_t offset = 0;
  char last = '\n';
  for (;;) {
    const ssize_t n = ::pread(fd, chunk, sizeof chunk, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) lines += chunk[i] == '\n';
    last = chunk[n - 1];
    offset += n;
  }
  return lines + (last != '\n');  // a last line without '\n' counts too
}

}  // namespace nmt::data
