#include "nmt/cli/alignment_pictures.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <ATen/ATen.h>

namespace nmt::cli {

std::vector<std::string> piece_labels(const data::Vocab& vocab, const std::vector<int64_t>& ids) {
  std::vector<std::string> out;
  out.reserve(ids.size() + 1);
  for (int64_t id : ids) out.push_back(vocab.piece(id));
  out.push_back("</s>");
  return out;
}

viz::AlignmentPanel make_panel(const std::string& title, std::vector<std::string> source,
                               std::vector<std::string> target, const at::Tensor& alignment) {
  const int64_t T = static_cast<int64_t>(target.size()), S = static_cast<int64_t>(source.size());
  if (alignment.dim() != 2 || alignment.size(0) < T || alignment.size(1) < S)
    throw std::invalid_argument("alignment of shape " + c10::str(alignment.sizes()) + " for " + std::to_string(T) +
                                " target and " + std::to_string(S) + " source tokens");
  auto a = alignment.slice(0, 0, T).slice(1, 0, S).to(at::kCPU, at::kFloat).contiguous();
  viz::AlignmentPanel p;
  p.title = title;
  p.source = std::move(source);
  p.target = std::move(target);
  p.weights.assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
  return p;
}

std::string picture_path(const std::string& dir, size_t line, const std::string& format) {
  char name[32];
  std::snprintf(name, sizeof name, "%05zu.%s", line, format.c_str());
  return (std::filesystem::path(dir) / name).string();
}

void require_pictures(const std::string& format) {
  if (format != "png" && format != "svg")
    throw std::runtime_error("picture format '" + format + "': expected png or svg");
  if (!viz::heatmap_supported())
    throw std::runtime_error("this nmt was built without Cairo: attention pictures are unavailable "
                             "(install libcairo2-dev and rebuild)");
}

}  // namespace nmt::cli
