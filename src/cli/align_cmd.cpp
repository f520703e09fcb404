// nmt align: draw the alignments a model gives a reference translation (teacher forcing). For a
// variational-attention model the prior p(z_t | x, y<t) and the posterior q(z_t | x, y) are drawn
// side by side, as in Deng et al. 2018 (figure 3).
#include <filesystem>
#include <memory>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "nmt/cli/command_list.h"
#include "nmt/cli/alignment_pictures.h"
#include "nmt/cli/commands.h"
#include "nmt/cli/model_io.h"
#include "nmt/cli/validators.h"
#include "nmt/data/batching.h"
#include "nmt/data/corpus.h"

namespace nmt::cli {
namespace {

struct AlignOptions {
  std::string model_dir, src, ref, output, device;
  std::string format = "png";
  int threads = 0;
};

void run_align(const AlignOptions& o) {
  require_pictures(o.format);
  auto text = data::read_parallel(o.src, o.ref);
  const auto tr = load_model(o.model_dir, o.threads, o.device).translator;
  std::filesystem::create_directories(o.output);
  torch::NoGradGuard no_grad;
  tr.model().eval();
  size_t drawn = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    data::Example ex{tr.src_vocab().encode(text.src[i]), tr.tgt_vocab().encode(text.tgt[i]), i};
    if (ex.src.empty() || ex.tgt.empty()) continue;
    auto batch = data::make_batch({&ex}, tr.device());
    auto out = tr.model().forward(batch);
    if (!out.attention.defined()) throw std::runtime_error(o.model_dir + ": this model has no attention to draw");
    auto source = piece_labels(tr.src_vocab(), ex.src);
    auto target = piece_labels(tr.tgt_vocab(), ex.tgt);
    std::vector<viz::AlignmentPanel> panels;
    const bool latent = out.posterior.defined();
    panels.push_back(make_panel(latent ? "prior p(z | x, y<t)" : "attention", source, target, out.attention[0]));
    if (latent) panels.push_back(make_panel("posterior q(z | x, y)", source, target, out.posterior[0]));
    viz::write_heatmap(picture_path(o.output, i + 1, o.format), panels);
    ++drawn;
  }
  spdlog::info("wrote {} alignment pictures to {}", drawn, o.output);
}

}  // namespace

void setup_align(CLI::App& app) {
  auto opts = std::make_shared<AlignOptions>();
  auto* cmd = app.add_subcommand("align", command_description("align"));
  cmd->add_option("-m,--model", opts->model_dir, "model directory written by nmt train")
      ->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--src", opts->src, "source text, one sentence per line")->required();
  cmd->add_option("--ref", opts->ref, "reference translations, line-aligned with --src")->required();
  cmd->add_option("-o,--output", opts->output, "directory for the pictures (DIR/NNNNN.png, by line number)")
      ->required();
  cmd->add_option("--format", opts->format, "picture format")->check(CLI::IsMember({"png", "svg"}));
  add_model_runtime_options(cmd, opts->threads, opts->device);
  cmd->callback([opts] { run_align(*opts); });
}

}  // namespace nmt::cli
