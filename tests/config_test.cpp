#include "nmt/config.h"

#include <gtest/gtest.h>

#include "support/test_util.h"

using nmt::ConfigError;
using nmt::testing::TempDir;
using nmt::testing::write_text;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultIsTheShippedMulti30kRnnConfig) {
  auto shipped = nmt::load_config(nmt::testing::source_path("configs/multi30k_rnn.yaml"));
  EXPECT_EQ(nmt::to_yaml(nmt::default_config()), nmt::to_yaml(shipped));
  EXPECT_EQ(shipped.model.type, nmt::ModelType::Rnn);
  EXPECT_EQ(shipped.data.train_src, "data/multi30k/train.de");
}

TEST(Config, ResolvedYamlRoundTrips) {
  auto c = nmt::default_config();
  nmt::apply_overrides(c, {"model.hidden_size=128", "train.lr=0.0005", "model.cell=gru", "data.train_src=a b.txt"});
  auto again = nmt::parse_config(nmt::to_yaml(c), "roundtrip");
  EXPECT_EQ(nmt::to_yaml(again), nmt::to_yaml(c));
  EXPECT_EQ(again.model.hidden_size, 128);
  EXPECT_DOUBLE_EQ(again.train.lr, 0.0005);
  EXPECT_EQ(again.model.cell, nmt::RnnCell::Gru);
  EXPECT_EQ(again.data.train_src, "a b.txt");
}

TEST(Config, UnknownKeyNamesFileAndKey) {
  TempDir dir;
  write_text(dir.file("c.yaml"), "model:\n  hiden_size: 3\n");
  auto msg = error_of([&] { nmt::load_config(dir.file("c.yaml")); });
  EXPECT_NE(msg.find(dir.file("c.yaml")), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.hiden_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << "should list the known keys: " << msg;
}

TEST(Config, UnknownSectionIsAnError) {
  auto msg = error_of([] { nmt::parse_config("modle:\n  type: rnn\n", "x.yaml"); });
  EXPECT_NE(msg.find("unknown section 'modle'"), std::string::npos) << msg;
}

// Found by tests/fuzz/fuzz_config.cpp: a key that is itself a map escaped as a yaml-cpp
// exception (uncaught in the fuzzer, and a message naming neither file nor key).
TEST(Config, AKeyThatIsNotANameIsAConfigError) {
  auto msg = error_of([] { nmt::parse_config("model:\n  type: rnn\n? encoder_layers: 3\n", "x.yaml"); });
  EXPECT_NE(msg.find("x.yaml: a key at the top level is not a plain name (line 3)"), std::string::npos) << msg;
  msg = error_of([] { nmt::parse_config("model:\n  ? [1, 2]\n  : 3\n", "x.yaml"); });
  EXPECT_NE(msg.find("x.yaml: a key in section 'model' is not a plain name"), std::string::npos) << msg;
}

TEST(Config, WrongTypeSaysWhatWasExpected) {
  auto msg = error_of([] { nmt::parse_config("model:\n  hidden_size: big\n", "x.yaml"); });
  EXPECT_NE(msg.find("model.hidden_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("an integer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'big'"), std::string::npos) << msg;
  msg = error_of([] { nmt::parse_config("model:\n  tie_embeddings: maybe\n", "x.yaml"); });
  EXPECT_NE(msg.find("true or false"), std::string::npos) << msg;
}

TEST(Config, BadValuesAreRejected) {
  EXPECT_NE(error_of([] { nmt::parse_config("model:\n  dropout: 1.5\n", "x"); }).find("in [0, 1]"), std::string::npos);
  EXPECT_NE(error_of([] { nmt::parse_config("model:\n  hidden_size: 0\n", "x"); }).find("> 0"), std::string::npos);
  auto msg = error_of([] { nmt::parse_config("model:\n  attention: magic\n", "x"); });
  EXPECT_NE(msg.find("bahdanau | luong"), std::string::npos) << msg;
  msg = error_of([] { nmt::parse_config("data:\n  joint_vocab: false\nmodel:\n  share_embeddings: true\n", "x"); });
  EXPECT_NE(msg.find("share_embeddings"), std::string::npos) << msg;
}

// Found by tests/fuzz/fuzz_config.cpp: YAML's .nan read as a number fails no range comparison, so
// a NaN dropout loaded, and its written form ('nan.0') did not load again.
TEST(Config, NaNIsNotANumberForAnyKey) {
  for (const std::string spelling : {".nan", ".NAN", ".NaN"}) {
    auto msg = error_of([&] { nmt::parse_config("model:\n  dropout: " + spelling + "\n", "x.yaml"); });
    EXPECT_NE(msg.find("x.yaml: key 'model.dropout' expects a number, not NaN, got '" + spelling + "'"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([] { nmt::parse_config("train:\n  lr: .nan\n", "x"); }).find("'train.lr'"), std::string::npos);
  EXPECT_NE(error_of([] { nmt::parse_config("train:\n  max_time: .inf\n", "x"); }).find("'train.max_time'"), std::string::npos);
}

TEST(Config, ConvS2SKeysAndCombinationsAreChecked) {
  auto c = nmt::parse_config("model:\n  type: convs2s\n  kernel_width: 5\n", "x");
  EXPECT_EQ(c.model.type, nmt::ModelType::ConvS2S);
  EXPECT_EQ(c.model.kernel_width, 5);
  EXPECT_EQ(nmt::model_type_name(c.model.type), "convs2s");
  auto msg = error_of([] { nmt::parse_config("model:\n  type: convs2s\n  kernel_width: 0\n", "x"); });
  EXPECT_NE(msg.find("model.kernel_width"), std::string::npos) << msg;
  msg = error_of([] { nmt::parse_config("model:\n  type: convs2s\n  dropout: 1\n", "x"); });
  EXPECT_NE(msg.find("model.dropout"), std::string::npos) << msg;
  // The RNN's attention options would be ignored by the other models: an error instead.
  msg = error_of([] { nmt::parse_config("model:\n  type: convs2s\n  attention_mode: hard\n", "x"); });
  EXPECT_NE(msg.find("model.attention_mode"), std::string::npos) << msg;
  msg = error_of([] { nmt::parse_config("model:\n  type: transformer\n  coverage_penalty: 0.1\n", "x"); });
  EXPECT_NE(msg.find("model.coverage_penalty"), std::string::npos) << msg;
  msg = error_of([] { nmt::parse_config("model:\n  type: cnn\n", "x"); });
  EXPECT_NE(msg.find("rnn | transformer | convs2s"), std::string::npos) << msg;
}

TEST(Config, OverridesApplyAndAreChecked) {
  auto c = nmt::default_config();
  nmt::apply_overrides(c, {"search.beam_size=3"});
  EXPECT_EQ(c.search.beam_size, 3);
  auto msg = error_of([&] { nmt::apply_overrides(c, {"search.beam=3"}); });
  EXPECT_NE(msg.find("--set search.beam=3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key 'search.beam'"), std::string::npos) << msg;
  EXPECT_FALSE(error_of([&] { nmt::apply_overrides(c, {"beam_size=3"}); }).empty());
}

TEST(Config, MissingFileNamesIt) {
  auto msg = error_of([] { nmt::load_config("/nonexistent/c.yaml"); });
  EXPECT_NE(msg.find("/nonexistent/c.yaml"), std::string::npos) << msg;
}

TEST(Config, ThreadsZeroMeansAllCores) {
  EXPECT_GE(nmt::resolve_threads(0), 1);
  EXPECT_EQ(nmt::resolve_threads(3), 3);
}

}  // namespace
