#pragma once
/// @file distributed.h
/// Data-parallel training over LibTorch's torch.distributed engine (c10d): rendezvous through a
/// `c10d::TCPStore`, collectives through Gloo on CPU or NCCL on CUDA (when LibTorch has it), and
/// a bucketed gradient all-reduce that overlaps the backward pass, as PyTorch's
/// DistributedDataParallel does (Li et al. 2020, "PyTorch Distributed: Experiences on
/// Accelerating Data Parallel Training").
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/Device.h>

namespace nmt::train {

/// Where this process stands in a group of training processes: the torchrun environment
/// (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`).
/// `world_size` 1 is plain single-process training.
struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool active() const { return world_size > 1; }
};

/// Thrown when a collective fails: a rank died or stopped answering within the timeout.
/// The message names the lost rank when it can be told (a rank on this host whose process is gone).
struct DistributedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One process's membership of the training group. Collectives are blocking unless said
/// otherwise and must be called by every rank in the same order.
class ProcessGroup {
 public:
  /// Joins the group: rank 0 serves the TCPStore at master_addr:master_port, the others connect
  /// to it; then a Gloo (CPU) or NCCL (CUDA `device`) group is built over it. Every collective
  /// fails after `timeout`. Throws DistributedError naming the address when rendezvous cannot
  /// complete (unresolvable or unreachable address, port in use, a rank that never arrives).
  ProcessGroup(const DistributedEnv& env, c10::Device device, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  const DistributedEnv& env() const { return env_; }

  /// Overwrites each tensor with rank 0's values.
  void broadcast(std::vector<at::Tensor> tensors);
  /// Element-wise sum over the ranks, in place.
  void all_reduce_sum(at::Tensor& tensor);
  /// Element-wise sum over the ranks, returned without waiting (see wait()).
  struct Pending;
  std::shared_ptr<Pending> all_reduce_sum_async(at::Tensor tensor);
  /// Waits for an asynchronous collective; throws DistributedError if it failed.
  void wait(Pending& pending);
  /// Returns once every rank has called it.
  void barrier();

 private:
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistributedEnv env_;
};

/// Sums the parameters' gradients over the ranks in buckets of about `bucket_bytes`
/// (PyTorch DDP: 25 MB). Between prepare() and finish() a hook on each parameter copies its
/// gradient (plus what earlier accumulated batches left in `.grad`) into its bucket as soon as
/// backward produces it, and launches the bucket's asynchronous all-reduce once the bucket is
/// complete (buckets are launched in one fixed order on every rank, as the collectives require),
/// so communication overlaps the rest of the backward pass. The parameters must be the same,
/// in the same order, on every rank.
class GradientReducer {
 public:
  GradientReducer(ProcessGroup& group, std::vector<at::Tensor> parameters, int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// Call before the last backward pass of an update (or before none, for a rank without a batch).
  void prepare();
  /// Completes the buckets whose parameters got no gradient in that backward (with what `.grad`
  /// holds, or zeros), launches what is left, waits, and leaves in every parameter's `.grad` the
  /// sum over the ranks. Throws DistributedError if a rank is lost.
  void finish();
  /// Seconds finish() spent waiting for communication, summed since the last call (then reset).
  double take_wait_seconds();
  size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    at::Tensor buffer;                 ///< flat [numel] gradients of its parameters
    std::vector<size_t> params;        ///< indices into parameters_
    std::vector<int64_t> offsets;      ///< each parameter's offset in buffer
    size_t pending = 0;                ///< parameters not yet copied in
    std::shared_ptr<ProcessGroup::Pending> work;
  };
  void on_gradient(size_t param, const at::Tensor& grad);
  void copy_in(size_t param, const at::Tensor& grad);
  void launch_ready();

  ProcessGroup& group_;
  std::vector<at::Tensor> parameters_;
  std::vector<std::pair<size_t, size_t>> where_;  ///< parameter -> (bucket, slot)
  std::vector<bool> ready_;     ///< copied into its bucket in this backward
  std::vector<bool> got_grad_;  ///< its hook saw a gradient in this backward
  std::vector<Bucket> buckets_;
  std::vector<unsigned> hooks_;
  size_t next_launch_ = 0;
  bool armed_ = false;
  double wait_seconds_ = 0;
  std::mutex mutex_;  ///< hooks may run on autograd device threads (CUDA)
};

}  // namespace nmt::train
