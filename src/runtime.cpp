#include "nmt/runtime.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <spdlog/spdlog.h>

#include "nmt/config.h"

namespace nmt {

void tune_process(char** argv) {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("NMT_NO_REEXEC") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    setenv("NMT_NO_REEXEC", "1", 1);  // never loop, whatever happens to the variable
    // Exec the resolved path (not /proc/self/exe) so the process keeps its name in ps/top.
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    execv(ec ? "/proc/self/exe" : self.c_str(), argv);
    // exec failed: carry on in this process with spinning OpenMP workers (slower, still correct)
  }
}

int setup_threads(int threads) {
  const int n = resolve_threads(threads);
  at::set_num_threads(n);
  // OpenBLAS ignores ATen's setting; its pool is set through its own entry point, looked up at
  // run time because the BLAS behind LibTorch is chosen by Debian's alternatives system.
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(n);
  } else {
    spdlog::warn("OpenBLAS is not the BLAS library in use: matrix products will be about 20x slower "
                 "(install libopenblas0-pthread; see scripts/setup.sh)");
  }
  return n;
}

c10::Device resolve_device(const std::string& name) {
  if (name == "auto") return at::hasCUDA() ? c10::Device(c10::kCUDA) : c10::Device(c10::kCPU);
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const std::exception&) {
    throw ConfigError("train.device: expected cpu | cuda | cuda:N | auto, got '" + name + "'");
  }
  if (device.is_cuda() && !at::hasCUDA())
    throw ConfigError("train.device: '" + name + "' requested but this LibTorch has no CUDA device");
  return device;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  // A symlink stays a symlink: its target is replaced. An existing file keeps its permissions.
  std::error_code ec;
  fs::path target = fs::is_symlink(path, ec) ? fs::weakly_canonical(path, ec) : fs::path(path);
  if (ec) target = path;
  if (fs::is_directory(target, ec))
    throw std::runtime_error(path + ": is a directory, expected a file to write");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string tmp = target.string() + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const char* what, int err) {
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": " + what + " (" + std::strerror(err) + "); the previous file is kept");
  };
  mode_t mode = 0644;
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) mode = st.st_mode & 07777;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      fail("write failed", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail("write failed", err);
  }
  if (::close(fd) != 0) fail("write failed", errno);
  if (::rename(tmp.c_str(), target.c_str()) != 0) fail("cannot replace the file", errno);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);  // make the rename itself durable
    ::close(dfd);
  }
}

}  // namespace nmt
