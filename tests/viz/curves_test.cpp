// The learning-curve pictures: valid PNG and SVG of two plots per metric, robust to empty and
// non-finite data.
#include "nmt/viz/curves.h"

#include <cmath>

#include <gtest/gtest.h>

#include "nmt/viz/heatmap.h"
#include "support/test_util.h"

namespace {

using nmt::testing::png_size;
using nmt::viz::Curve;
using nmt::viz::CurvePanel;

std::vector<CurvePanel> panels() {
  Curve train{"training", {}}, valid{"validation", {}};
  for (int64_t step = 10; step <= 200; step += 10) train.points.push_back({step, step * 1.5, 100.0 / step});
  for (int64_t step = 50; step <= 200; step += 50) valid.points.push_back({step, step * 1.5, 120.0 / step});
  valid.points.push_back({210, 315, std::nan("")});  // skipped, not drawn as garbage
  return {{"loss", false, {train, valid}}, {"perplexity", true, {train, valid}}, {"BLEU", false, {Curve{"validation", {}}}}};
}

class Curves : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!nmt::viz::heatmap_supported()) GTEST_SKIP() << "built without Cairo";
  }
};

TEST_F(Curves, PngHasTwoPlotsPerMetricRow) {
  const auto png = nmt::viz::render_curves(panels(), "png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  const auto [w, h] = png_size(png);
  EXPECT_EQ(w, 880);      // updates | wall-clock time
  EXPECT_EQ(h, 3 * 230);  // one row per metric
}

TEST_F(Curves, SvgNamesTheAxesAndDrawsTheData) {
  const auto svg = nmt::viz::render_curves(panels(), "svg");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  // Text is drawn as glyphs; the curves are paths: more of them with data than without.
  auto paths = [](const std::string& s) {
    size_t n = 0;
    for (size_t at = s.find("<path"); at != std::string::npos; at = s.find("<path", at + 1)) ++n;
    return n;
  };
  std::vector<CurvePanel> empty = {{"loss", false, {Curve{"training", {}}}}};
  auto panel = panels();
  panel.resize(1);
  EXPECT_GT(paths(nmt::viz::render_curves(panel, "svg")), paths(nmt::viz::render_curves(empty, "svg")));
}

TEST_F(Curves, BadRequestsAreErrors) {
  EXPECT_THROW(nmt::viz::render_curves(panels(), "jpg"), std::invalid_argument);
  EXPECT_THROW(nmt::viz::render_curves({}, "png"), std::invalid_argument);
}

}  // namespace
