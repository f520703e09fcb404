#include "nmt/viz/heatmap.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

#ifdef NMT_HAVE_CAIRO
#include <cairo-svg.h>
#include <cairo.h>
#endif

namespace nmt::viz {
namespace {

constexpr double kFontSize = 12;
constexpr int kPad = 8;         ///< outer margin and label-to-matrix gap
constexpr int kPanelGap = 32;   ///< between panels
constexpr int kTitleHeight = 20;

void check(const std::vector<AlignmentPanel>& panels) {
  if (panels.empty()) throw std::invalid_argument("heatmap: no panel to draw");
  for (const auto& p : panels)
    if (p.weights.size() != p.source.size() * p.target.size() || p.source.empty() || p.target.empty())
      throw std::invalid_argument("heatmap: panel '" + p.title + "' has " + std::to_string(p.weights.size()) +
                                  " weights for " + std::to_string(p.target.size()) + " target × " +
                                  std::to_string(p.source.size()) + " source tokens");
}

#ifdef NMT_HAVE_CAIRO
void set_font(cairo_t* cr) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, kFontSize);
}

double text_width(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  return e.x_advance;
}

/// Where one panel lies and how its margins are split.
struct PanelLayout {
  int x = 0;        ///< left edge of the panel
  int left = 0;     ///< width of the target-label margin
  int top = 0;      ///< height of the title + source-label margin
  int width = 0, height = 0;
};

std::vector<PanelLayout> layout(cairo_t* cr, const std::vector<AlignmentPanel>& panels, ImageSize& size) {
  std::vector<PanelLayout> out;
  int x = kPad;
  size.height = 0;
  for (const auto& p : panels) {
    PanelLayout l;
    double left = 0, top = 0;
    for (const auto& t : p.target) left = std::max(left, text_width(cr, t));
    for (const auto& s : p.source) top = std::max(top, text_width(cr, s));
    l.x = x;
    l.left = static_cast<int>(std::ceil(left)) + kPad;
    l.top = kTitleHeight + static_cast<int>(std::ceil(top)) + kPad;
    l.width = l.left + static_cast<int>(p.source.size()) * kCellSize;
    l.height = l.top + static_cast<int>(p.target.size()) * kCellSize;
    l.width = std::max(l.width, static_cast<int>(std::ceil(text_width(cr, p.title))));
    x += l.width + kPanelGap;
    size.height = std::max(size.height, kPad + l.height + kPad);
    out.push_back(l);
  }
  size.width = x - kPanelGap + kPad;
  return out;
}

/// Measure with a scratch surface (the same font machinery as the real one).
std::vector<PanelLayout> measure(const std::vector<AlignmentPanel>& panels, ImageSize& size) {
  cairo_surface_t* scratch = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t* cr = cairo_create(scratch);
  set_font(cr);
  auto l = layout(cr, panels, size);
  cairo_destroy(cr);
  cairo_surface_destroy(scratch);
  return l;
}

void draw(cairo_t* cr, const std::vector<AlignmentPanel>& panels, const std::vector<PanelLayout>& layouts,
          ImageSize size) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  set_font(cr);
  for (size_t i = 0; i < panels.size(); ++i) {
    const auto& p = panels[i];
    const auto& l = layouts[i];
    const double x0 = l.x + l.left, y0 = kPad + l.top;
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, l.x, kPad + kFontSize);
    cairo_show_text(cr, p.title.c_str());
    // Source tokens along the top, rotated to read upwards; target tokens on the left.
    for (size_t s = 0; s < p.source.size(); ++s) {
      cairo_save(cr);
      cairo_move_to(cr, x0 + s * kCellSize + kCellSize / 2.0 + kFontSize / 3, y0 - kPad / 2.0);
      cairo_rotate(cr, -M_PI / 2);
      cairo_show_text(cr, p.source[s].c_str());
      cairo_restore(cr);
    }
    for (size_t t = 0; t < p.target.size(); ++t) {
      const double w = text_width(cr, p.target[t]);
      cairo_move_to(cr, x0 - kPad / 2.0 - w, y0 + t * kCellSize + kCellSize / 2.0 + kFontSize / 3);
      cairo_show_text(cr, p.target[t].c_str());
    }
    // Cells: white (weight 0) to dark blue (weight 1).
    for (size_t t = 0; t < p.target.size(); ++t)
      for (size_t s = 0; s < p.source.size(); ++s) {
        const double a = std::clamp(static_cast<double>(p.weights[t * p.source.size() + s]), 0.0, 1.0);
        cairo_set_source_rgb(cr, 1 - 0.92 * a, 1 - 0.75 * a, 1 - 0.45 * a);
        cairo_rectangle(cr, x0 + s * kCellSize, y0 + t * kCellSize, kCellSize, kCellSize);
        cairo_fill(cr);
      }
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, p.source.size() * kCellSize - 1.0, p.target.size() * kCellSize - 1.0);
    cairo_stroke(cr);
  }
  (void)size;
}

std::string extension(const std::string& path) {
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}
#endif

}  // namespace

#ifdef NMT_HAVE_CAIRO
bool heatmap_supported() { return true; }

ImageSize heatmap_size(const std::vector<AlignmentPanel>& panels) {
  check(panels);
  ImageSize size;
  measure(panels, size);
  return size;
}

ImageSize write_heatmap(const std::string& path, const std::vector<AlignmentPanel>& panels) {
  check(panels);
  const std::string ext = extension(path);
  if (ext != "png" && ext != "svg")
    throw std::invalid_argument(path + ": unknown picture format (expected a .png or .svg file name)");
  ImageSize size;
  auto layouts = measure(panels, size);
  cairo_surface_t* surface = ext == "png"
      ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, size.width, size.height)
      : cairo_svg_surface_create(path.c_str(), size.width, size.height);
  cairo_t* cr = cairo_create(surface);
  draw(cr, panels, layouts, size);
  cairo_destroy(cr);
  cairo_status_t status = CAIRO_STATUS_SUCCESS;
  if (ext == "png") status = cairo_surface_write_to_png(surface, path.c_str());
  cairo_surface_finish(surface);
  if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error(path + ": cannot write picture: " + cairo_status_to_string(status));
  return size;
}
#else
bool heatmap_supported() { return false; }

ImageSize heatmap_size(const std::vector<AlignmentPanel>& panels) {
  check(panels);
  throw std::runtime_error("this nmt was built without Cairo: attention pictures are unavailable "
                           "(install libcairo2-dev and rebuild)");
}

ImageSize write_heatmap(const std::string&, const std::vector<AlignmentPanel>& panels) {
  return heatmap_size(panels);
}
#endif

}  // namespace nmt::viz
