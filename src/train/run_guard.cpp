#include "nmt/train/run_guard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace nmt::train {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal != 0) _exit(128 + sig);  // second signal: stop now
  g_stop_signal = sig;
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

bool process_exists(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

std::string read_fd(int fd) {
  std::string s;
  char buf[256];
  ssize_t n;
  off_t off = 0;
  while ((n = ::pread(fd, buf, sizeof buf, off)) > 0 && s.size() < 4096) {
    s.append(buf, static_cast<size_t>(n));
    off += n;
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

/// "pid P on host H" from a lock file's "P H" content.
std::string describe_owner(const std::string& content) {
  const auto space = content.find(' ');
  if (content.empty() || space == std::string::npos) return "an unknown owner ('" + content + "')";
  return "pid " + content.substr(0, space) + " on host " + content.substr(space + 1);
}

}  // namespace

RunLock::RunLock(const std::string& model_dir) {
  std::filesystem::create_directories(model_dir);
  path_ = (std::filesystem::path(model_dir) / "lock").string();
  for (int attempt = 0; attempt < 5; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(path_ + ": cannot create the lock file (" + std::strerror(errno) + ")");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const std::string owner = describe_owner(read_fd(fd));
      ::close(fd);
      throw std::runtime_error(model_dir + " is in use by another training run (" + owner + ", lock file " + path_ +
                               "); wait for it to end or stop it");
    }
    // The file may have been removed by its previous owner between open and flock: then this
    // lock is on a dead inode, and the attempt starts again.
    struct stat by_fd, by_path;
    if (::fstat(fd, &by_fd) != 0 || ::stat(path_.c_str(), &by_path) != 0 || by_fd.st_ino != by_path.st_ino ||
        by_fd.st_dev != by_path.st_dev) {
      ::close(fd);
      continue;
    }
    const std::string previous = read_fd(fd);
    if (!previous.empty())
      spdlog::warn("{}: taking over a stale lock left by {} (that process is gone)", path_, describe_owner(previous));
    const std::string content = std::to_string(::getpid()) + " " + host_name() + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, content.data(), content.size(), 0) != static_cast<ssize_t>(content.size())) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(path_ + ": cannot write the lock file (" + std::strerror(err) + ")");
    }
    fd_ = fd;
    return;
  }
  throw std::runtime_error(path_ + ": cannot take the lock (it keeps being replaced)");
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still holding the flock: nobody else owns this file
  ::close(fd_);
}

void install_stop_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGXFSZ, SIG_IGN);
}

int stop_signal() { return g_stop_signal; }

int remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  static const std::regex temporary(R"(.+\.tmp\.([0-9]+))");
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || !std::regex_match(name, m, temporary)) continue;
    const long pid = std::stol(m[1].str().substr(0, 9));
    if (pid == ::getpid() || process_exists(pid)) continue;
    if (fs::remove(entry.path(), ec)) {
      spdlog::info("removed {}, a temporary file left by a run that was killed (pid {})", entry.path().string(), pid);
      ++removed;
    }
  }
  return removed;
}

}  // namespace nmt::train
