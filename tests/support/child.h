#pragma once
// A child process with pipes to its standard input and from its standard output, for tests of
// interactive behaviour (a line in, a line out, before the end of input).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace nmt::testing {

class Child {
 public:
  /// What becomes of the child's standard error.
  enum class Stderr { kDiscard, kWithOutput };

  /// Starts argv[0] with the arguments argv[1..]; its stderr goes to /dev/null, or with
  /// Stderr::kWithOutput into the same pipe as its stdout (read_line reads both, e.g. a log).
  explicit Child(const std::vector<std::string>& argv, Stderr stderr_to = Stderr::kDiscard) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      const int null = open("/dev/null", O_WRONLY);
      dup2(stderr_to == Stderr::kWithOutput ? out[1] : null, STDERR_FILENO);
      close(in[0]), close(in[1]), close(out[0]), close(out[1]), close(null);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
    ::signal(SIGPIPE, SIG_IGN);
  }
  ~Child() {
    close_input();
    if (out_ >= 0) close(out_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void write_line(const std::string& line) {
    const std::string s = line + "\n";
    for (size_t done = 0; done < s.size();) {
      const ssize_t n = ::write(in_, s.data() + done, s.size() - done);
      if (n <= 0) throw std::runtime_error("write to the child failed");
      done += static_cast<size_t>(n);
    }
  }
  /// The next line of its output (without '\n'), or nothing at its end or after `timeout_s`.
  std::optional<std::string> read_line(double timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  void close_input() {
    if (in_ >= 0) close(in_);
    in_ = -1;
  }
  /// Sends `sig` to the child.
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  /// Its exit status (-1 when killed by a signal), or nothing when it is still running after
  /// `timeout_s` (it is then left running).
  std::optional<int> wait_for(double timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      usleep(10000);
    }
  }
  /// Its exit status (-1 when killed by a signal).
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buf_;
};

}  // namespace nmt::testing
