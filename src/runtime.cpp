#include "nmt/runtime.h"

#include <dlfcn.h>
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
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp);
      throw std::runtime_error(path + ": write failed (" + std::strerror(errno) + ")");
    }
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace nmt
