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
#include "nmt/openmp_env.h"

namespace nmt {

std::string memory_allocator() { return dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr ? "tcmalloc" : "glibc"; }

void tune_process(char** argv) {
  // Under tcmalloc these set the idle glibc allocator and change nothing.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  bound_onednn_primitive_cache();
  if (std::getenv("NMT_NO_REEXEC") == nullptr && set_thread_waiting()) {
    setenv("NMT_NO_REEXEC", "1", 1);  // never loop, whatever happens to the variable
    // Exec the resolved path (not /proc/self/exe) so the process keeps its name in ps/top.
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    execv(ec ? "/proc/self/exe" : self.c_str(), argv);
    // exec failed: carry on in this process with spinning OpenMP workers (slower, still correct)
  }
}

void bound_onednn_primitive_cache() { setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32", /*overwrite=*/0); }

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

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  // A symlink stays a symlink: its target is replaced. An existing file keeps its permissions.
  std::error_code ec;
  fs::path target = fs::is_symlink(path, ec) ? fs::weakly_canonical(path, ec) : fs::path(path);
  if (ec) target = path;
  if (fs::is_directory(target, ec))
    throw std::runtime_error(path + ": is a directory, expected a file to write");
  target_ = target.string();
  dir_ = target.has_parent_path() ? target.parent_path().string() : std::string(".");
  tmp_ = target_ + ".tmp." + std::to_string(::getpid());
  mode_ = 0644;
  struct stat st;
  if (::stat(target_.c_str(), &st) == 0) mode_ = st.st_mode & 07777;
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_);
  if (fd_ < 0) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::fail(const char* what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  committed_ = true;  // nothing left to remove
  throw std::runtime_error(path_ + ": " + what + " (" + std::strerror(err) + "); the previous file is kept");
}

void AtomicFileWriter::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd_, p + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed", n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  written_ += size;
}

void AtomicFileWriter::write_at(uint64_t offset, const void* data, size_t size) {
  if (::pwrite(fd_, data, size, static_cast<off_t>(offset)) != static_cast<ssize_t>(size)) fail("write failed", errno);
}

void AtomicFileWriter::commit() {
  if (::fchmod(fd_, mode_) != 0 || ::fsync(fd_) != 0) fail("write failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("write failed", errno);
  if (::rename(tmp_.c_str(), target_.c_str()) != 0) fail("cannot replace the file", errno);
  committed_ = true;
  if (const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);  // make the rename itself durable
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFileWriter out(path);
  out.write(content.data(), content.size());
  out.commit();
}

}  // namespace nmt
