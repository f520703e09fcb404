// Compiled with USE_C10D_GLOO (and USE_C10D_NCCL where LibTorch has CUDA), without the
// precompiled header: see CMakeLists.txt.
#include "nmt/train/distributed.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace nmt::train {
namespace {

// LibTorch 2 split the communication back ends out of ProcessGroup into c10d::Backend.
#if TORCH_VERSION_MAJOR >= 2
using Backend = c10d::Backend;
#else
using Backend = c10d::ProcessGroup;
#endif

std::string message_of(const std::exception& e) {
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  std::string s = e.what();
  return s.substr(0, s.find('\n'));
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

/// A process on this host that exists and is not a zombie.
bool process_alive(long pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

}  // namespace

struct ProcessGroup::Pending {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
};

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Backend> backend;
  std::vector<std::pair<std::string, long>> peers;  ///< rank -> (host, pid)
  std::chrono::milliseconds timeout{0};
};

ProcessGroup::ProcessGroup(const DistributedEnv& env, c10::Device device, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()), env_(env) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size)
    throw DistributedError(fmt::format("RANK {} is not in [0, WORLD_SIZE {})", env.rank, env.world_size));
  if (env.master_port <= 0 || env.master_port > 65535)
    throw DistributedError(fmt::format("MASTER_PORT {} is not a TCP port (1-65535)", env.master_port));
  impl_->timeout = timeout;
  const std::string where = fmt::format("{}:{}", env.master_addr, env.master_port);
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<uint16_t>(env.master_port);
    opts.isServer = env.rank == 0;
    opts.numWorkers = env.world_size;
    opts.waitWorkers = true;
    opts.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  } catch (const std::exception& e) {
    throw DistributedError(fmt::format(
        "rank {}: rendezvous at MASTER_ADDR:MASTER_PORT {} failed ({}): {}", env.rank, where,
        env.rank == 0 ? "cannot serve the store there, or not every rank arrived within train.dist_timeout"
                      : "cannot reach rank 0's store there within train.dist_timeout",
        message_of(e)));
  }
  try {
    const std::string me = fmt::format("{} {}", host_name(), getpid());
    impl_->store->set(fmt::format("nmt/rank/{}", env.rank), std::vector<uint8_t>(me.begin(), me.end()));
    if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, opts);
#else
      throw DistributedError("train.device is CUDA but this LibTorch has no NCCL: build nmt against a CUDA LibTorch");
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, opts);
    }
    for (int r = 0; r < env.world_size; ++r) {
      const auto bytes = impl_->store->get(fmt::format("nmt/rank/{}", r));
      std::istringstream in(std::string(bytes.begin(), bytes.end()));
      std::string host;
      long pid = 0;
      in >> host >> pid;
      impl_->peers.emplace_back(host, pid);
    }
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError(fmt::format("rank {}: building the process group over {} failed: {}", env.rank, where,
                                       message_of(e)));
  }
  spdlog::debug("rank {} of {} joined the group at {}", env.rank, env.world_size, where);
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::fail(const std::string& what, const std::exception& e) const {
  const std::string me = host_name();
  std::vector<std::string> lost;
  // A killed peer's sockets close while its process is still exiting: look again for a while.
  for (int attempt = 0; attempt < 30 && lost.empty(); ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (size_t r = 0; r < impl_->peers.size(); ++r) {
      const auto& [host, pid] = impl_->peers[r];
      if (static_cast<int>(r) != env_.rank && host == me && !process_alive(pid))
        lost.push_back(fmt::format("rank {} (pid {} on {})", r, pid, host));
    }
  }
  const std::string who =
      lost.empty() ? fmt::format("a rank failed or did not answer within train.dist_timeout ({} s)",
                                 impl_->timeout.count() / 1000)
                   : fmt::format("lost {}: its process is gone", fmt::join(lost, ", "));
  throw DistributedError(fmt::format("rank {}: {} during {}: {}", env_.rank, who, what, message_of(e)));
}

void ProcessGroup::broadcast(std::vector<at::Tensor> tensors) {
  try {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      impl_->backend->broadcast(one)->wait();
    }
  } catch (const std::exception& e) {
    fail("broadcast", e);
  }
}

void ProcessGroup::all_reduce_sum(at::Tensor& tensor) {
  auto pending = all_reduce_sum_async(tensor);
  wait(*pending);
}

std::shared_ptr<ProcessGroup::Pending> ProcessGroup::all_reduce_sum_async(at::Tensor tensor) {
  auto pending = std::make_shared<Pending>();
  pending->what = "all-reduce";
  try {
    std::vector<at::Tensor> one{std::move(tensor)};
    pending->work = impl_->backend->allreduce(one);
  } catch (const std::exception& e) {
    fail(pending->what, e);
  }
  return pending;
}

void ProcessGroup::wait(Pending& pending) {
  try {
    pending.work->wait();
  } catch (const std::exception& e) {
    fail(pending.what, e);
  }
}

void ProcessGroup::barrier() {
  try {
    impl_->backend->barrier()->wait();
  } catch (const std::exception& e) {
    fail("barrier", e);
  }
}

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<at::Tensor> parameters, int64_t bucket_bytes)
    : group_(group), parameters_(std::move(parameters)) {
  // Backward produces gradients roughly in reverse order of the forward pass, which follows
  // registration order: fill buckets from the last parameter (as DDP does).
  where_.resize(parameters_.size());
  ready_.assign(parameters_.size(), false);
  got_grad_.assign(parameters_.size(), false);
  int64_t bytes = bucket_bytes;  // start a new bucket first
  for (size_t k = parameters_.size(); k-- > 0;) {
    const auto& p = parameters_[k];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool same_kind = !buckets_.empty() &&
                           parameters_[buckets_.back().params.front()].options().type_equal(p.options());
    if (buckets_.empty() || bytes + size > bucket_bytes || !same_kind) {
      buckets_.emplace_back();
      bytes = 0;
    }
    auto& b = buckets_.back();
    where_[k] = {buckets_.size() - 1, b.params.size()};
    b.params.push_back(k);
    bytes += size;
  }
  for (auto& b : buckets_) {
    int64_t numel = 0;
    for (size_t k : b.params) {
      b.offsets.push_back(numel);
      numel += parameters_[k].numel();
    }
    b.buffer = at::zeros({numel}, parameters_[b.params.front()].options().requires_grad(false));
  }
  for (size_t k = 0; k < parameters_.size(); ++k)
    hooks_.push_back(parameters_[k].register_hook([this, k](const at::Tensor& grad) { on_gradient(k, grad); }));
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) {
    try {
      parameters_[k].remove_hook(hooks_[k]);
    } catch (const std::exception&) {
      // the parameter's autograd metadata is gone with its module: nothing to remove
    }
  }
}

void GradientReducer::prepare() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fill(ready_.begin(), ready_.end(), false);
  std::fill(got_grad_.begin(), got_grad_.end(), false);
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.work.reset();
  }
  next_launch_ = 0;
  armed_ = true;
}

void GradientReducer::copy_in(size_t k, const at::Tensor& grad) {
  const auto [bucket, slot] = where_[k];
  auto& b = buckets_[bucket];
  auto view = b.buffer.narrow(0, b.offsets[slot], parameters_[k].numel()).view(parameters_[k].sizes());
  // `.grad` holds what the update's earlier batches accumulated; autograd adds `grad` to it
  // after this hook, but the bucket must carry the total now.
  const auto& accumulated = parameters_[k].grad();
  if (grad.defined() && accumulated.defined()) at::add_out(view, accumulated, grad);
  else if (grad.defined()) view.copy_(grad);
  else if (accumulated.defined()) view.copy_(accumulated);
  else view.zero_();
  got_grad_[k] = grad.defined();
  ready_[k] = true;
  --b.pending;
}

void GradientReducer::on_gradient(size_t k, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || ready_[k]) return;
  copy_in(k, grad);
  launch_ready();
}

void GradientReducer::launch_ready() {
  // Every rank must issue the collectives in the same order: launch bucket i only after 0..i-1.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    auto& b = buckets_[next_launch_++];
    b.work = group_.all_reduce_sum_async(b.buffer);
  }
}

void GradientReducer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  // A parameter that has a gradient on no rank keeps none (the optimizer skips it, as it would
  // in one process), so each rank says which parameters it has gradients for.
  auto has_grad = at::zeros({static_cast<int64_t>(parameters_.size())}, at::kFloat);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t k = 0; k < parameters_.size(); ++k) {
      if (!ready_[k]) copy_in(k, at::Tensor());
      if (parameters_[k].grad().defined() || got_grad_[k]) has_grad[static_cast<int64_t>(k)] = 1.0f;
    }
    launch_ready();
    armed_ = false;
  }
  auto has_grad_work = group_.all_reduce_sum_async(has_grad);
  for (auto& b : buckets_) group_.wait(*b.work);
  group_.wait(*has_grad_work);
  auto used = has_grad.accessor<float, 1>();
  for (auto& b : buckets_) {
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      auto& p = parameters_[b.params[slot]];
      if (used[static_cast<int64_t>(b.params[slot])] == 0) {
        p.mutable_grad() = at::Tensor();
        continue;
      }
      auto view = b.buffer.narrow(0, b.offsets[slot], p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(view);
      else p.mutable_grad() = view.clone();
    }
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double GradientReducer::take_wait_seconds() {
  const double s = wait_seconds_;
  wait_seconds_ = 0;
  return s;
}

}  // namespace nmt::train
