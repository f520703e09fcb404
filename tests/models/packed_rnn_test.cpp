// The bidirectional packed LSTM/GRU layer (nmt/models/packed_rnn.h) against LibTorch's at::lstm /
// at::gru over the same packed batch and weights: outputs and the gradients of the input and of
// every weight.
#include "nmt/models/packed_rnn.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nmt/precision.h"

namespace {

namespace rnn = torch::nn::utils::rnn;

struct Case {
  at::Tensor data, batch_sizes;    ///< packed input [N, I], [S]
  std::vector<at::Tensor> params;  ///< 8 weights, requiring grad
};

/// A packed batch of sequences with the given lengths (unsorted, as the encoder packs them),
/// input size I, H per direction, G = 4 (LSTM) or 3 (GRU) gates.
Case make_case(const std::vector<int64_t>& lengths, int64_t I, int64_t H, int64_t G) {
  torch::manual_seed(11);
  const int64_t B = static_cast<int64_t>(lengths.size());
  const int64_t S = *std::max_element(lengths.begin(), lengths.end());
  auto padded = torch::randn({B, S, I});
  auto packed = rnn::pack_padded_sequence(padded, torch::tensor(lengths), /*batch_first=*/true, /*enforce_sorted=*/false);
  Case c{packed.data().detach().clone().requires_grad_(), packed.batch_sizes(), {}};
  for (int d = 0; d < 2; ++d)
    for (auto shape : std::vector<std::vector<int64_t>>{{G * H, I}, {G * H, H}, {G * H}, {G * H}})
      c.params.push_back((torch::rand(shape) * 0.6 - 0.3).requires_grad_());
  return c;
}

Case clone(const Case& c) {
  Case d{c.data.detach().clone().requires_grad_(), c.batch_sizes, {}};
  for (const auto& p : c.params) d.params.push_back(p.detach().clone().requires_grad_());
  return d;
}

void expect_same_as_libtorch(const std::vector<int64_t>& lengths, bool lstm) {
  const int64_t H = 6;
  auto ours = make_case(lengths, 5, H, lstm ? 4 : 3);
  auto ref = clone(ours);
  auto y = nmt::models::packed_bidirectional_layer(ours.data, ours.batch_sizes, ours.params, lstm);
  const auto h0 = torch::zeros({2, lengths.size() > 0 ? ref.batch_sizes[0].item<int64_t>() : 0, H});
  auto y_ref = lstm ? std::get<0>(at::lstm(ref.data, ref.batch_sizes, {h0, h0}, ref.params, true, 1, 0.0, true, true))
                    : std::get<0>(at::gru(ref.data, ref.batch_sizes, h0, ref.params, true, 1, 0.0, true, true));
  ASSERT_EQ(y.sizes(), y_ref.sizes());
  EXPECT_TRUE(torch::allclose(y, y_ref, 1e-6, 1e-6)) << (y - y_ref).abs().max();
  // A weighting of the outputs that differs per element, so that every gradient path counts.
  auto w = torch::randn(y.sizes());
  (y * w).sum().backward();
  (y_ref * w).sum().backward();
  EXPECT_TRUE(torch::allclose(ours.data.grad(), ref.data.grad(), 1e-5, 1e-6))
      << (ours.data.grad() - ref.data.grad()).abs().max();
  for (size_t i = 0; i < ours.params.size(); ++i)
    EXPECT_TRUE(torch::allclose(ours.params[i].grad(), ref.params[i].grad(), 1e-5, 1e-5))
        << "weight " << i << ": " << (ours.params[i].grad() - ref.params[i].grad()).abs().max();
}

TEST(PackedBidirectionalLayer, LstmEqualsLibTorchValuesAndGradients) {
  expect_same_as_libtorch({7, 3, 9, 1, 9, 4}, /*lstm=*/true);
}

TEST(PackedBidirectionalLayer, GruEqualsLibTorchValuesAndGradients) {
  expect_same_as_libtorch({7, 3, 9, 1, 9, 4}, /*lstm=*/false);
}

TEST(PackedBidirectionalLayer, OneSequenceAndEqualLengths) {
  expect_same_as_libtorch({5}, true);
  expect_same_as_libtorch({4, 4, 4}, false);
}

TEST(PackedBidirectionalLayer, ReverseDirectionStartsAtEachSequencesOwnEnd) {
  // A sequence's reverse output at its first token must not depend on another, longer sequence:
  // the same sequence alone and beside a longer one give the same outputs.
  auto pair = make_case({2, 6}, 3, 4, 4);
  auto y = nmt::models::packed_bidirectional_layer(pair.data, pair.batch_sizes, pair.params, true);
  // Packed order: step 0 rows (long, short), step 1 rows (long, short), then the long one alone.
  auto short_alone = torch::stack({pair.data[1], pair.data[3]});
  auto y_alone = nmt::models::packed_bidirectional_layer(short_alone, torch::tensor({int64_t{1}, int64_t{1}}),
                                                         pair.params, true);
  EXPECT_TRUE(torch::allclose(torch::stack({y[1], y[3]}), y_alone, 1e-6, 1e-6));
}

TEST(PackedBidirectionalLayer, UnderBf16AutocastStatesStayFp32AsLibTorchs) {
  // The gate products run in bf16; the cell and hidden states, and so the output, stay fp32.
  for (bool lstm : {true, false}) {
    auto c = make_case({6, 2, 5}, 8, 8, lstm ? 4 : 3);
    nmt::AutocastGuard bf16(nmt::Precision::kBf16, torch::kCPU);
    auto y = nmt::models::packed_bidirectional_layer(c.data, c.batch_sizes, c.params, lstm);
    const auto h0 = torch::zeros({2, 3, 8});
    auto y_ref = lstm ? std::get<0>(at::lstm(c.data, c.batch_sizes, {h0, h0}, c.params, true, 1, 0.0, true, true))
                      : std::get<0>(at::gru(c.data, c.batch_sizes, h0, c.params, true, 1, 0.0, true, true));
    EXPECT_EQ(y.scalar_type(), y_ref.scalar_type());
    EXPECT_EQ(y.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::allclose(y, y_ref, 1e-2, 1e-2)) << (y - y_ref).abs().max();
  }
}

TEST(PackedBidirectionalLayer, WrongNumberOfWeightsIsAnError) {
  auto c = make_case({3, 2}, 3, 4, 4);
  c.params.pop_back();
  EXPECT_THROW(nmt::models::packed_bidirectional_layer(c.data, c.batch_sizes, c.params, true), c10::Error);
}

}  // namespace
