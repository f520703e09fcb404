// Data-parallel collectives and the bucketed gradient all-reduce, with two ranks as two threads
// of this process (each its own c10d group over loopback).
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/cli/launch.h"
#include "nmt/train/distributed.h"
#include "support/test_util.h"

namespace {

using nmt::train::DistributedEnv;
using nmt::train::GradientReducer;
using nmt::train::ProcessGroup;
using nmt::cli::free_loopback_port;

/// Runs body(group) on ranks 0 and 1 concurrently; rethrows the first failure.
void on_two_ranks(const std::function<void(ProcessGroup&)>& body) {
  const int port = free_loopback_port();
  std::exception_ptr errors[2];
  auto rank = [&](int r) {
    try {
      DistributedEnv env;
      env.rank = r;
      env.world_size = 2;
      env.master_port = port;
      ProcessGroup group(env, torch::kCPU, std::chrono::seconds(60));
      body(group);
    } catch (...) {
      errors[r] = std::current_exception();
    }
  };
  std::thread t0(rank, 0), t1(rank, 1);
  t0.join();
  t1.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

TEST(Distributed, BroadcastAndAllReduce) {
  on_two_ranks([](ProcessGroup& g) {
    auto x = torch::full({3}, static_cast<float>(g.rank() + 1));
    g.broadcast({x});
    EXPECT_TRUE(torch::equal(x, torch::full({3}, 1.0f)));  // rank 0's values everywhere
    auto y = torch::tensor({1.0, 10.0 * g.rank()}, torch::kFloat64);
    g.all_reduce_sum(y);
    EXPECT_TRUE(torch::equal(y, torch::tensor({2.0, 10.0}, torch::kFloat64)));
    g.barrier();
  });
}

// Each rank's gradient is what its backward passes accumulate; after finish() every rank holds
// the sum over both ranks, whatever the bucket layout; a parameter without a gradient anywhere
// keeps none (the optimizer must skip it, as in one process).
TEST(Distributed, ReducerSumsAccumulatedGradientsOverRanks) {
  for (int64_t bucket_bytes : {int64_t{8}, int64_t{40}, int64_t{1} << 20}) {
    std::vector<torch::Tensor> grads[2];
    on_two_ranks([&](ProcessGroup& g) {
      // The same parameters on both ranks, made without the global generator, which the two
      // rank threads would otherwise draw from concurrently.
      auto a = torch::tensor({0.3f, -1.2f, 0.7f}).requires_grad_();
      auto b = torch::tensor({{0.5f, -0.4f}, {1.1f, 0.2f}}).requires_grad_();
      auto unused = torch::ones({4}).requires_grad_();
      GradientReducer reducer(g, {a, b, unused}, bucket_bytes);
      const double k = g.rank() + 1.0;
      // rank 0 accumulates two batches, rank 1 has one
      if (g.rank() == 0) ((a * a).sum() + (b * 3).sum()).backward();
      reducer.prepare();
      ((a * k).sum() + (b * b * k).sum()).backward();
      reducer.finish();
      grads[g.rank()] = {a.grad().clone(), b.grad().clone()};
      EXPECT_FALSE(unused.grad().defined());
      // What the two ranks' backward passes add up to, computed here in one place.
      auto a2 = a.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
      ((a2 * a2).sum() + (b2 * 3).sum() + (a2 * 1).sum() + (b2 * b2).sum() + (a2 * 2).sum() + (b2 * b2 * 2).sum())
          .backward();
      EXPECT_TRUE(torch::allclose(a.grad(), a2.grad(), 1e-6, 1e-7)) << "bucket bytes " << bucket_bytes;
      EXPECT_TRUE(torch::allclose(b.grad(), b2.grad(), 1e-6, 1e-7)) << "bucket bytes " << bucket_bytes;
    });
    EXPECT_TRUE(torch::equal(grads[0][0], grads[1][0]));
    EXPECT_TRUE(torch::equal(grads[0][1], grads[1][1]));
  }
}

// A rank without a batch in an update (the end of an epoch) still takes part, with zeros.
TEST(Distributed, RankWithoutBatchContributesNothing) {
  on_two_ranks([](ProcessGroup& g) {
    auto w = torch::ones({5}).requires_grad_();
    GradientReducer reducer(g, {w}, 1 << 20);
    reducer.prepare();
    if (g.rank() == 0) (w * torch::arange(5)).sum().backward();
    reducer.finish();
    EXPECT_TRUE(torch::equal(w.grad(), torch::arange(5).to(torch::kFloat)));
  });
}

TEST(Distributed, UnreachableMasterIsAClearError) {
  DistributedEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_addr = "nmt-no-such-host.invalid";
  env.master_port = free_loopback_port();
  try {
    ProcessGroup group(env, torch::kCPU, std::chrono::seconds(3));
    FAIL() << "joined a group without rank 0";
  } catch (const nmt::train::DistributedError& e) {
    EXPECT_NE(std::string(e.what()).find("nmt-no-such-host.invalid:" + std::to_string(env.master_port)),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
