// The alignment heatmap writer: valid PNG and SVG files of the announced size.
#include "nmt/viz/heatmap.h"

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace {

using nmt::testing::png_size;
using nmt::testing::read_text;
using nmt::testing::TempDir;
using nmt::viz::AlignmentPanel;

AlignmentPanel panel(const std::string& title, size_t S, size_t T) {
  AlignmentPanel p;
  p.title = title;
  for (size_t s = 0; s < S; ++s) p.source.push_back("▁Quelle" + std::to_string(s));
  for (size_t t = 0; t < T; ++t) p.target.push_back("tgt" + std::to_string(t));
  for (size_t t = 0; t < T; ++t)
    for (size_t s = 0; s < S; ++s) p.weights.push_back(s == t % S ? 0.8f : 0.2f / (S - 1));
  return p;
}

class Heatmap : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!nmt::viz::heatmap_supported()) GTEST_SKIP() << "built without Cairo";
  }
  TempDir dir_;
};

TEST_F(Heatmap, PngHasTheSignatureAndTheAnnouncedSize) {
  std::vector<AlignmentPanel> panels{panel("attention", 5, 7)};
  auto size = nmt::viz::write_heatmap(dir_.file("a.png"), panels);
  auto bytes = read_text(dir_.file("a.png"));
  ASSERT_GT(bytes.size(), 33u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(png_size(bytes), std::make_pair(size.width, size.height));
  auto announced = nmt::viz::heatmap_size(panels);
  EXPECT_EQ(announced.width, size.width);
  EXPECT_EQ(announced.height, size.height);
  // Room for every cell, plus label margins.
  EXPECT_GT(size.width, 5 * nmt::viz::kCellSize);
  EXPECT_GT(size.height, 7 * nmt::viz::kCellSize);
}

TEST_F(Heatmap, CellsGrowTheImageAndPanelsSitSideBySide) {
  auto small = nmt::viz::heatmap_size({panel("", 4, 4)});
  auto wider = nmt::viz::heatmap_size({panel("", 6, 4)});
  auto taller = nmt::viz::heatmap_size({panel("", 4, 9)});
  EXPECT_EQ(wider.width - small.width, 2 * nmt::viz::kCellSize);
  EXPECT_EQ(wider.height, small.height);
  EXPECT_EQ(taller.height - small.height, 5 * nmt::viz::kCellSize);
  auto two = nmt::viz::heatmap_size({panel("prior", 4, 4), panel("posterior", 4, 4)});
  EXPECT_GT(two.width, 2 * small.width - 20);
  EXPECT_EQ(two.height, small.height);
  auto written = nmt::viz::write_heatmap(dir_.file("two.png"), {panel("prior", 4, 4), panel("posterior", 4, 4)});
  EXPECT_EQ(png_size(read_text(dir_.file("two.png"))), std::make_pair(two.width, two.height));
  EXPECT_EQ(written.width, two.width);
}

TEST_F(Heatmap, SvgIsAnSvgDocumentOfTheAnnouncedSize) {
  auto size = nmt::viz::write_heatmap(dir_.file("a.svg"), {panel("attention", 3, 2)});
  auto text = read_text(dir_.file("a.svg"));
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("width=\"" + std::to_string(size.width)), std::string::npos) << text.substr(0, 300);
  EXPECT_NE(text.find("height=\"" + std::to_string(size.height)), std::string::npos);
}

TEST_F(Heatmap, BadInputIsAClearError) {
  auto bad = panel("broken", 3, 2);
  bad.weights.pop_back();
  EXPECT_THROW(nmt::viz::write_heatmap(dir_.file("b.png"), {bad}), std::invalid_argument);
  EXPECT_THROW(nmt::viz::write_heatmap(dir_.file("b.gif"), {panel("", 3, 2)}), std::invalid_argument);
  EXPECT_THROW(nmt::viz::write_heatmap("/nonexistent/dir/c.png", {panel("", 3, 2)}), std::runtime_error);
}

}  // namespace
