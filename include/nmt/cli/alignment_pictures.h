#pragma once
/// @file alignment_pictures.h
/// Turning a model's alignments into heatmap panels (viz/heatmap.h) for `translate
/// --attention-out` and `align`.
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "nmt/data/vocab.h"
#include "nmt/viz/heatmap.h"

namespace nmt::cli {

/// Subword pieces of `ids` followed by "</s>" (the EOS every source and output ends with).
std::vector<std::string> piece_labels(const data::Vocab& vocab, const std::vector<int64_t>& ids);

/// A panel from alignment [T', S'] (T' ≥ target.size(), S' ≥ source.size(); the extra rows and
/// columns, e.g. batch padding, are dropped).
viz::AlignmentPanel make_panel(const std::string& title, std::vector<std::string> source,
                               std::vector<std::string> target, const at::Tensor& alignment);

/// DIR/NNNNN.FORMAT for the 1-based sentence number `line` (five digits, more when needed).
std::string picture_path(const std::string& dir, size_t line, const std::string& format);

/// Throws std::runtime_error when this build cannot draw, or `format` is not png or svg.
void require_pictures(const std::string& format);

}  // namespace nmt::cli
