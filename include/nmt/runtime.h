#pragma once
/// @file runtime.h
/// Process-wide set-up: thread pools, device choice, atomic file writes.
#include <cstddef>
#include <cstdint>
#include <string>

#include <c10/core/Device.h>

namespace nmt {

/// Process tuning that must happen first thing in main(); measured on 2 cores, each step below
/// doubles training speed or more:
///  - glibc malloc, where it is the allocator (builds without tcmalloc, see memory_allocator), is
///    told to keep freed memory instead of returning large blocks to the kernel (otherwise every
///    training step re-faults hundreds of MB of fresh pages);
///  - ATen's OpenMP workers must not spin long between operators, or they starve OpenBLAS's own
///    threads (nmt/openmp_env.h). libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT only when it
///    is loaded, so when both are unset, and so is NMT_NO_REEXEC (which the front end sets after
///    setting them), this sets them (set_openmp_waiting) and re-executes the program once;
///  - oneDNN's primitive cache is bounded (bound_onednn_primitive_cache).
/// Returns normally when no re-execution was needed (or it failed).
void tune_process(char** argv);

/// The process's malloc: "tcmalloc" when gperftools' tcmalloc serves it (the `nmt` executable
/// links it where it is installed: as fast as glibc malloc with its freed memory kept, and
/// decoding peaks 20% lower, see README "Decoding memory"), else "glibc".
std::string memory_allocator();

/// Bounds oneDNN's primitive cache (bf16 and int8 products) to 32 shapes unless
/// ONEDNN_PRIMITIVE_CACHE_CAPACITY is set. oneDNN keeps a primitive, with its memory, for every
/// shape it has seen (1,024 by default), and batch shapes and beam search's row counts change all
/// the time: unbounded, bf16 training of the Transformer grew to 4.4 GB in 1,000 updates (fp32:
/// 1.5 GB) and int8 decoding of test2016 held twice fp32's memory (1.28 against 0.67 GB). Takes
/// effect only before oneDNN creates its first primitive.
void bound_onednn_primitive_cache();

/// Set both thread pools that matter on CPU: OpenBLAS's (matrix products) and ATen's intra-op
/// pool (everything else). `threads` 0 = all cores. Warns when OpenBLAS is not the BLAS in use
/// (LibTorch is then about 20x slower). Returns the thread count used.
int setup_threads(int threads);

/// "cpu", "cuda", "cuda:N" or "auto" (CUDA when available, else CPU). Throws ConfigError when
/// CUDA is asked for but unavailable.
c10::Device resolve_device(const std::string& name);

/// Write `content` to `path` atomically: a temporary file beside it, flushed and fsync'ed, then
/// renamed over it and the directory fsync'ed. A symlink's target is replaced (the link stays);
/// an existing file keeps its permissions. On any error (ENOSPC, EFBIG, ...) the temporary file
/// is removed, the previous file is untouched, and std::runtime_error names the file.
void write_file_atomic(const std::string& path, const std::string& content);

/// write_file_atomic() for content written piece by piece (files too large to hold): the
/// temporary file is created at construction and renamed over `path` by commit(); destroyed
/// without commit() (an exception), it is removed. Every error is std::runtime_error naming `path`.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  /// Appends `size` bytes.
  void write(const void* data, size_t size);
  /// Overwrites bytes already written (e.g. a header whose fields are known at the end).
  void write_at(uint64_t offset, const void* data, size_t size);
  uint64_t written() const { return written_; }
  /// fsync, rename over the target, fsync the directory.
  void commit();

 private:
  [[noreturn]] void fail(const char* what, int err);
  std::string path_, target_, dir_, tmp_;
  unsigned mode_ = 0644;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace nmt
