// int8 decoding (models/int8.h): the packed product against fp32, models::Linear and every model
// type with set_int8, and that training never sees the int8 weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/models/int8.h"
#include "nmt/models/seq2seq.h"
#include "support/model_util.h"

namespace {

using nmt::models::int8_engine;

/// ‖a − b‖ / ‖b − mean(b)‖ over the last dimension: the error relative to the spread of b.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const auto centred = b - b.mean(-1, true);
  return ((a - b).norm() / centred.norm()).item<double>();
}

TEST(Int8, PackedProductIsCloseToTheFp32Product) {
  if (int8_engine().empty()) GTEST_SKIP() << "this LibTorch has no int8 engine";
  torch::manual_seed(0);
  const auto w = torch::randn({300, 64}) * 0.1, b = torch::randn({300}), x = torch::randn({7, 5, 64});
  const auto packed = nmt::models::pack_int8(w, b);
  const auto y = nmt::models::int8_linear(x, *packed);
  const auto ref = at::linear(x, w, b);
  ASSERT_EQ(y.sizes(), ref.sizes());
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  EXPECT_LT(relative_error(y, ref), 0.05);
  EXPECT_FALSE(torch::equal(y, ref));  // really the integer path
  // Without a bias, and a weight that is a view (as a tied output layer's is).
  const auto wide = torch::randn({64, 600});
  const auto t = wide.t();  // [600, 64], not contiguous
  EXPECT_LT(relative_error(nmt::models::int8_linear(x, *nmt::models::pack_int8(t, at::Tensor())), at::linear(x, t)),
            0.05);
}

TEST(Int8, LinearLayerUsesInt8InEvalModeOnly) {
  if (int8_engine().empty()) GTEST_SKIP() << "this LibTorch has no int8 engine";
  torch::manual_seed(1);
  nmt::models::Linear linear(32, 48);
  const auto x = torch::randn({10, 32});
  torch::NoGradGuard no_grad;
  const auto fp32 = linear(x);
  linear->set_int8(true);
  EXPECT_TRUE(linear->int8());
  linear->train();
  EXPECT_TRUE(torch::equal(linear(x), fp32));  // training: the fp32 weights
  linear->eval();
  const auto int8 = linear(x);
  EXPECT_FALSE(torch::equal(int8, fp32));
  EXPECT_LT(relative_error(int8, fp32), 0.05);
  linear->set_int8(false);
  EXPECT_TRUE(torch::equal(linear(x), fp32));
}

class Int8Model : public ::testing::TestWithParam<nmt::ModelType> {};

// Every model type: int8 decoding follows the fp32 model step by step, the teacher-forced
// training pass is untouched, and set_int8(false) gives the fp32 model back.
TEST_P(Int8Model, DecodesCloseToFp32AndLeavesTrainingAlone) {
  if (int8_engine().empty()) GTEST_SKIP() << "this LibTorch has no int8 engine";
  torch::manual_seed(2);
  auto config = nmt::testing::tiny_model_config(GetParam());
  config.embed_dim = config.hidden_size = 32;
  config.attention.type = nmt::AttentionType::Luong;
  auto model = nmt::models::make_model(config, 40, 50);
  const auto batch = nmt::testing::batch_of(nmt::testing::examples());
  torch::NoGradGuard no_grad;
  model->train();
  const auto train_fp32 = model->forward(batch).log_probs;
  model->eval();
  auto steps = [&] {  // log-probs of decoding the reference prefix step by step, [T, B, V]
    auto state = model->start(batch.src);
    std::vector<at::Tensor> out;
    for (int64_t t = 0; t < batch.tgt_in.size(1); ++t)
      out.push_back(log_probs_of(model->step(batch.tgt_in.select(1, t), *state)));
    return torch::stack(out);
  };
  const auto fp32 = steps();
  model->set_int8(true);
  const auto int8 = steps();
  EXPECT_FALSE(torch::equal(int8, fp32));
  const double err = relative_error(int8, fp32);
  EXPECT_LT(err, 0.1) << "relative error of the int8 log-probs";  // measured 0.001-0.017
  model->train();
  EXPECT_TRUE(torch::equal(model->forward(batch).log_probs, train_fp32));
  model->eval();
  model->set_int8(false);
  EXPECT_TRUE(torch::equal(steps(), fp32));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Int8Model,
                         ::testing::Values(nmt::ModelType::Rnn, nmt::ModelType::Transformer, nmt::ModelType::ConvS2S),
                         [](const auto& info) {
                           switch (info.param) {
                             case nmt::ModelType::Rnn: return std::string("rnn");
                             case nmt::ModelType::Transformer: return std::string("transformer");
                             default: return std::string("convs2s");
                           }
                         });

}  // namespace
