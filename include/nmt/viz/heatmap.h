#pragma once
/// @file heatmap.h
/// Alignment pictures: attention weights as heatmaps, source tokens along the top, target
/// tokens down the left side, drawn with Cairo (https://www.cairographics.org) as PNG or SVG.
/// Several panels (e.g. prior and posterior of variational attention) are drawn side by side.
/// Independent of LibTorch: the weights are plain floats.
#include <string>
#include <vector>

namespace nmt::viz {

/// One alignment matrix and its labels.
struct AlignmentPanel {
  std::string title;                ///< drawn above the matrix (may be empty)
  std::vector<std::string> source;  ///< column labels, S of them
  std::vector<std::string> target;  ///< row labels, T of them
  std::vector<float> weights;       ///< T×S row-major alignment weights in [0, 1]
};

/// Picture size in pixels (PNG) or points (SVG).
struct ImageSize {
  int width = 0, height = 0;
};

/// Pixel size of a cell of the matrix.
constexpr int kCellSize = 22;

/// Whether this build can draw (it was compiled with Cairo).
bool heatmap_supported();

/// The size write_heatmap gives `panels`: each panel is its label margins plus S × T cells
/// of kCellSize, panels side by side. Throws std::invalid_argument for a panel whose weights
/// are not T×S, std::runtime_error without Cairo.
ImageSize heatmap_size(const std::vector<AlignmentPanel>& panels);

/// Draw `panels` into `path`; the format follows the extension (.png or .svg). Returns the
/// size. Throws std::invalid_argument for another extension or malformed panels, and
/// std::runtime_error when the file cannot be written or the build has no Cairo.
ImageSize write_heatmap(const std::string& path, const std::vector<AlignmentPanel>& panels);

}  // namespace nmt::viz
