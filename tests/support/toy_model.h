#pragma once
// The toy RNN the end-to-end tests share: trained once per ctest run by the fixture
// ToyModelFixture.TrainsTheSharedToyModel into $NMT_TEST_TOY_RNN_DIR (CMakeLists.txt sets it for
// the fixture and for the test suites that require it), or, when the test binary runs on its own,
// trained by the suite that needs it.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "support/test_util.h"

namespace nmt::testing {

/// The toy RNN's training command (into `model_dir`).
inline std::string toy_training(const std::string& model_dir) {
  return "train -c configs/toy_rnn.yaml --set train.model_dir=" + model_dir + " --set train.threads=1" +
         learning_overrides();
}

/// The directory the ctest fixture trains the shared toy RNN into ($NMT_TEST_TOY_RNN_DIR); empty
/// when the binary runs on its own.
inline std::string shared_toy_dir() {
  const char* dir = std::getenv("NMT_TEST_TOY_RNN_DIR");
  return dir ? dir : "";
}

/// A trained toy RNN for a suite's SetUpTestSuite: the fixture's, or one trained now into a
/// temporary directory removed at destruction. ok() is false (error() says why) when the fixture
/// left no model or training failed.
class ToyRnn {
 public:
  ToyRnn() {
    if (const std::string shared = shared_toy_dir(); !shared.empty()) {
      model_ = shared + "/model";
      if (!std::filesystem::exists(shared + "/train.out")) {
        error_ = "the fixture ToyModelFixture.TrainsTheSharedToyModel left no trained model in " + shared;
        return;
      }
      train_log_ = read_text(shared + "/train.out");
      return;
    }
    dir_ = std::make_unique<TempDir>();
    model_ = dir_->file("model");
    auto r = run_nmt(toy_training(model_));
    train_log_ = r.output;
    if (r.exit_code != 0) error_ = "training the toy RNN failed:\n" + r.output;
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& model() const { return model_; }
  /// The output of `nmt train`.
  const std::string& train_log() const { return train_log_; }

 private:
  std::unique_ptr<TempDir> dir_;
  std::string model_, train_log_, error_;
};

}  // namespace nmt::testing
