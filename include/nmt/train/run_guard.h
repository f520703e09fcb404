#pragma once
/// @file run_guard.h
/// What protects a training run from other runs and from its own end: a lock file in the model
/// directory, a graceful stop on SIGINT/SIGTERM, and the removal of temporary files that killed
/// runs left behind.
#include <string>

namespace nmt::train {

/// Exclusive use of a model directory by one training run: `model_dir/lock` holds the owner's pid
/// and host, and the owner holds an flock(2) on it, which the kernel releases when the process
/// dies however it dies. The destructor removes the file.
class RunLock {
 public:
  /// Creates `model_dir` if needed and takes the lock. A lock file whose owner is gone (a dead
  /// pid: nobody holds its flock) is taken over with a warning naming the old pid and host.
  /// Throws std::runtime_error naming the lock file and the owner's pid and host while another
  /// run holds it, or when the file cannot be created.
  explicit RunLock(const std::string& model_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

/// Signal handling for a training run: the first SIGINT or SIGTERM only records the signal (the
/// training loop polls stop_signal() after each update, writes last.pt and returns); a second
/// one ends the process at once with exit status 128 + signal. SIGXFSZ is ignored, so a write
/// past `ulimit -f` fails with EFBIG (an error message) instead of killing the process.
void install_stop_handlers();

/// The signal (SIGINT or SIGTERM) that asked the run to stop, or 0. Async-signal-safe.
int stop_signal();

/// Removes the temporary files `NAME.tmp.PID` in `dir` (left by write_file_atomic in a process
/// killed mid-write) whose process PID no longer exists, logging each; returns how many.
int remove_stale_temporaries(const std::string& dir);

}  // namespace nmt::train
