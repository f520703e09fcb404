#include "nmt/cli/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nmt/cli/commands.h"

extern char** environ;

namespace nmt::cli {
namespace {

/// An integer environment variable in [lo, hi], or `fallback` when unset.
int env_int(const char* name, int fallback, int lo, int hi) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
    throw std::runtime_error(fmt::format("environment variable {}='{}': expected an integer in [{}, {}]", name,
                                         text, lo, hi));
  return static_cast<int>(v);
}

std::string describe(int status) {
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

volatile sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) { g_forward_signal = sig; }

}  // namespace

void stop_with_launcher() {
  const char* launcher = std::getenv("NMT_LAUNCHER_PID");
  if (launcher == nullptr) return;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (std::to_string(getppid()) != launcher) raise(SIGTERM);  // it died before prctl took effect
}

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = std::strerror(errno);
    close(fd);
    throw std::runtime_error("cannot find a free port on 127.0.0.1: " + err);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

train::DistributedEnv distributed_env_from_environment() {
  train::DistributedEnv env;
  const bool slurm = std::getenv("WORLD_SIZE") == nullptr && std::getenv("SLURM_NTASKS") != nullptr;
  env.world_size = env_int(slurm ? "SLURM_NTASKS" : "WORLD_SIZE", 1, 1, 1 << 20);
  if (!env.active()) return env;
  env.rank = env_int(slurm ? "SLURM_PROCID" : "RANK", -1, 0, env.world_size - 1);
  if (env.rank < 0) throw std::runtime_error("environment variable WORLD_SIZE is set but RANK is not");
  env.local_rank = env_int(slurm ? "SLURM_LOCALID" : "LOCAL_RANK", 0, 0, env.world_size - 1);
  env.local_world_size = env_int(slurm ? "SLURM_NTASKS_PER_NODE" : "LOCAL_WORLD_SIZE", 1, 1, env.world_size);
  if (const char* addr = std::getenv("MASTER_ADDR")) env.master_addr = addr;
  if (env.master_addr.empty()) throw std::runtime_error("environment variable MASTER_ADDR is empty");
  env.master_port = env_int("MASTER_PORT", env.master_port, 1, 65535);
  return env;
}

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < all.size();) {
    const size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return args;
}

void launch_local_ranks(int nproc, const std::vector<std::string>& args) {
  if (std::getenv("WORLD_SIZE") != nullptr)
    throw std::runtime_error("--nproc starts the ranks itself: unset WORLD_SIZE/RANK (set by torchrun) or drop --nproc");
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string program = ec ? "/proc/self/exe" : self.string();
  const int port = free_loopback_port();
  spdlog::info("starting {} ranks on 127.0.0.1:{}", nproc, port);

  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<pid_t> pids;
  struct sigaction forward {}, old_int {}, old_term {};
  forward.sa_handler = remember_signal;
  sigaction(SIGINT, &forward, &old_int);
  sigaction(SIGTERM, &forward, &old_term);
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> env_text;
    for (char** e = environ; *e; ++e) env_text.emplace_back(*e);
    env_text.push_back(fmt::format("RANK={}", r));
    env_text.push_back(fmt::format("LOCAL_RANK={}", r));
    env_text.push_back(fmt::format("WORLD_SIZE={}", nproc));
    env_text.push_back(fmt::format("LOCAL_WORLD_SIZE={}", nproc));
    env_text.push_back("MASTER_ADDR=127.0.0.1");
    env_text.push_back(fmt::format("MASTER_PORT={}", port));
    env_text.push_back(fmt::format("NMT_LAUNCHER_PID={}", getpid()));
    std::vector<char*> envp;
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    // Each rank in a process group of its own: a Ctrl-C at the terminal reaches the launcher
    // only, which passes it on once (a second signal would make the ranks exit at once).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    const int err = posix_spawn(&pid, program.c_str(), nullptr, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
      for (pid_t p : pids) kill(p, SIGTERM);
      throw std::runtime_error(fmt::format("cannot start rank {} ({}): {}", r, program, std::strerror(err)));
    }
    pids.push_back(pid);
  }

  std::string failure;
  size_t running = pids.size();
  auto first_failure = std::chrono::steady_clock::time_point::max();
  bool terminated = false;
  int interrupted = 0;  // the signal passed on to the ranks
  while (running > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      --running;
      const auto it = std::find(pids.begin(), pids.end(), pid);
      const int r = static_cast<int>(it - pids.begin());
      if (it != pids.end()) *it = -1;
      const bool stopped_as_asked = interrupted != 0 && WIFEXITED(status) && WEXITSTATUS(status) == 128 + interrupted;
      if (!stopped_as_asked && ((WIFEXITED(status) && WEXITSTATUS(status) != 0) || WIFSIGNALED(status))) {
        spdlog::error("rank {} (pid {}) {}", r, pid, describe(status));
        if (failure.empty()) {
          failure = fmt::format("rank {} (pid {}) {}", r, pid, describe(status));
          first_failure = std::chrono::steady_clock::now();
        }
      }
      continue;
    }
    if (g_forward_signal != 0) {
      for (pid_t p : pids)
        if (p > 0) kill(p, g_forward_signal);
      interrupted = g_forward_signal;
      g_forward_signal = 0;
    }
    // The surviving ranks notice a lost rank by themselves and exit with a message naming it;
    // stop any that does not within a few seconds.
    const auto since_failure = std::chrono::steady_clock::now() - first_failure;
    if (!terminated && since_failure > std::chrono::seconds(10)) {
      for (pid_t p : pids)
        if (p > 0) kill(p, SIGTERM);
      terminated = true;
    } else if (terminated && since_failure > std::chrono::seconds(40)) {
      for (pid_t p : pids)
        if (p > 0) kill(p, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (!failure.empty()) throw std::runtime_error(failure + "; the run's other ranks were stopped");
  if (interrupted != 0) throw ExitStatus{128 + interrupted};  // as one process would exit
}

}  // namespace nmt::cli
