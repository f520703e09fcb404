#pragma once
/// @file curves.h
/// Learning curves: training and validation metrics drawn against updates and against
/// wall-clock time, with Cairo, as PNG or SVG (what `nmt train` writes to MODEL_DIR/curves.png
/// and curves.svg at each validation). Independent of LibTorch: plain numbers in, bytes out.
#include <cstdint>
#include <string>
#include <vector>

namespace nmt::viz {

/// One measurement: after `step` updates, `seconds` of training wall-clock time.
struct CurvePoint {
  int64_t step = 0;
  double seconds = 0;
  double value = 0;
};

/// One line of a plot, e.g. the validation perplexity.
struct Curve {
  std::string label;
  std::vector<CurvePoint> points;  ///< in training order
};

/// One metric: drawn twice side by side, against updates (left) and wall-clock hours (right).
struct CurvePanel {
  std::string title;       ///< e.g. "perplexity"
  bool log_scale = false;  ///< logarithmic y axis (values must then be positive)
  std::vector<Curve> curves;
};

/// The picture of `panels` (one row each) in `format` ("png" or "svg"), as the bytes of the
/// file. Curves without points are left out; a panel without any point shows an empty plot.
/// Non-finite values (and non-positive ones on a log scale) are skipped. Throws
/// std::invalid_argument for another format or no panel, std::runtime_error when the build has
/// no Cairo or Cairo fails.
std::string render_curves(const std::vector<CurvePanel>& panels, const std::string& format);

}  // namespace nmt::viz
