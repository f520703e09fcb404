#pragma once
/// @file bench_cmd.h
/// `nmt bench`: how fast one config trains and translates on this machine, measured in one
/// process so the figures can be compared with the machine's own matrix-multiply ceiling:
///
///   nmt bench -c configs/multi30k_transformer.yaml [--steps 20] [--sentences 300] [-m MODEL_DIR]
///
/// It prints, in order:
///  - the fp32 GEMM ceiling: best GFLOP/s of at::mm on n×n matrices (n = 1024, 2048);
///  - training speed: target (non-pad) tokens/s over `steps` updates on real batches of
///    the config's corpus (data.batch_tokens, train.accum_steps, Adam, label smoothing,
///    clipping), after `warmup` untimed updates;
///  - training FLOPs per target token: the matrix products (mm, addmm, bmm, baddbmm) of
///    `profile_steps` profiled updates, forward and backward, as the LibTorch profiler counts
///    them from their shapes; hence the achieved GFLOP/s and its fraction of the ceiling;
///  - translation speed with beam search: output tokens/s and sentences/s on the first
///    `sentences` lines of the source file, with a freshly initialised model (its outputs run to
///    the maximum length a·|x| + b, so this times long hypotheses) or, with --model, a trained
///    model directory;
///  - peak resident memory of the process (getrusage ru_maxrss);
///  - the operators with the most self CPU time in `profile_steps` further updates, profiled
///    without shapes (cheaper), and how much the profiler slowed them down;
///  - the same for the translation of the first `profile_sentences` sentences once more;
///  - one `summary:` line with every figure as key=value, for scripts.
#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace nmt::cli {

struct BenchOptions {
  std::string config_file;             ///< -c: the config to benchmark (required)
  std::vector<std::string> overrides;  ///< --set section.key=value
  std::string work_dir = "runs/bench"; ///< SentencePiece models are trained here once and reused
  std::string model_dir;               ///< -m: translate with this trained model instead
  std::string src_file;                ///< translation input (default: data.test_src, else valid_src)
  int warmup = 3;                      ///< untimed updates first
  int steps = 20;                      ///< timed training updates
  int profile_steps = 3;               ///< profiled updates, twice: FLOP count, then operator table
  int sentences = 300;                 ///< sentences translated
  int profile_sentences = 100;         ///< the first of them translated again under the profiler (0: none)
  int beam = 5;                        ///< beam size for translation
  int threads = 0;                     ///< 0: the config's train.threads
  int top = 15;                        ///< operators listed in the profile
  int shapes = 0;                      ///< per listed training operator, its heaviest input shapes
};

/// Registers `nmt bench` on `app`.
void setup_bench(CLI::App& app);

/// Runs the benchmark and writes its report to `out`. Throws ConfigError / std::runtime_error
/// for a bad config, a missing corpus or an empty input.
void run_bench(const BenchOptions& options, std::ostream& out);

}  // namespace nmt::cli
