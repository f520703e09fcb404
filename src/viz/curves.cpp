#include "nmt/viz/curves.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#ifdef NMT_HAVE_CAIRO
#include <cairo-svg.h>
#include <cairo.h>
#endif

namespace nmt::viz {

#ifdef NMT_HAVE_CAIRO
namespace {

constexpr int kPlotWidth = 440, kPlotHeight = 230;  ///< one plot with its axes and labels
constexpr double kLeft = 62, kRight = 14, kTop = 26, kBottom = 40;  ///< margins around the data area
constexpr double kColors[][3] = {{0.12, 0.47, 0.71}, {1.0, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16}};

/// "Nice" tick values (1, 2 or 5 × 10^k apart) covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int wanted = 5) {
  const double span = hi - lo;
  const double raw = span / wanted, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag, step = (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) out.push_back(t);
  return out;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e5 || a < 1e-3) return fmt::format("{:.0e}", v);
  if (a >= 100 || std::fabs(v - std::round(v)) < 1e-9) return fmt::format("{:.0f}", v);
  return a >= 10 ? fmt::format("{:.1f}", v) : fmt::format("{:.2g}", v);
}

void text(cairo_t* cr, double x, double y, const std::string& s, double align_x = 0, double align_y = 0) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align_x * e.x_advance, y + align_y * e.height);
  cairo_show_text(cr, s.c_str());
}

/// One plot at (x0, y0): the curves of `panel` against updates (`by_time` false) or hours.
void plot(cairo_t* cr, double x0, double y0, const CurvePanel& panel, bool by_time) {
  // Wall-clock time in seconds, minutes or hours, whichever keeps the numbers readable.
  double last_seconds = 0;
  for (const auto& c : panel.curves)
    for (const auto& p : c.points) last_seconds = std::max(last_seconds, p.seconds);
  const double unit = last_seconds < 120 ? 1 : last_seconds < 7200 ? 60 : 3600;
  const char* unit_name = unit == 1 ? "seconds" : unit == 60 ? "minutes" : "hours";
  auto x_of = [by_time, unit](const CurvePoint& p) { return by_time ? p.seconds / unit : static_cast<double>(p.step); };
  auto usable = [&panel](const CurvePoint& p) {
    return std::isfinite(p.value) && (!panel.log_scale || p.value > 0);
  };
  auto y_of = [&panel](double v) { return panel.log_scale ? std::log10(v) : v; };
  double xlo = 0, xhi = 0, ylo = 1e300, yhi = -1e300;
  for (const auto& c : panel.curves)
    for (const auto& p : c.points)
      if (usable(p)) {
        xhi = std::max(xhi, x_of(p));
        ylo = std::min(ylo, y_of(p.value));
        yhi = std::max(yhi, y_of(p.value));
      }
  if (ylo > yhi) ylo = 0, yhi = 1;                    // nothing to draw
  if (xhi <= xlo) xhi = xlo + 1;
  if (yhi - ylo < 1e-9) ylo -= 0.5, yhi += 0.5;
  const double pad = 0.05 * (yhi - ylo);
  ylo -= pad, yhi += pad;
  const double w = kPlotWidth - kLeft - kRight, h = kPlotHeight - kTop - kBottom;
  const double ax = x0 + kLeft, ay = y0 + kTop;
  auto px = [&](double x) { return ax + (x - xlo) / (xhi - xlo) * w; };
  auto py = [&](double y) { return ay + h - (y - ylo) / (yhi - ylo) * h; };

  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_font_size(cr, 12);
  text(cr, x0 + kPlotWidth / 2.0, y0 + 16, panel.title + (by_time ? " vs wall-clock time" : " vs updates"), 0.5);
  cairo_set_font_size(cr, 10);
  text(cr, ax + w / 2, y0 + kPlotHeight - 6, by_time ? unit_name : "updates", 0.5);
  // Grid and tick labels.
  cairo_set_line_width(cr, 0.5);
  for (double t : ticks(xlo, xhi)) {
    cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
    cairo_move_to(cr, px(t), ay);
    cairo_line_to(cr, px(t), ay + h);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, px(t), ay + h + 14, tick_label(t), 0.5);
  }
  std::vector<double> yticks;
  if (panel.log_scale) {
    for (double e = std::floor(ylo); e <= std::ceil(yhi); ++e)
      for (double m : {1.0, 2.0, 5.0})
        if (const double t = e + std::log10(m); t >= ylo && t <= yhi) yticks.push_back(t);
    if (yticks.size() < 2) {  // less than a decade: evenly spaced values, placed on the log scale
      yticks.clear();
      for (double v : ticks(std::pow(10.0, ylo), std::pow(10.0, yhi)))
        if (v > 0) yticks.push_back(std::log10(v));
    }
  } else {
    yticks = ticks(ylo, yhi);
  }
  for (double t : yticks) {
    cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
    cairo_move_to(cr, ax, py(t));
    cairo_line_to(cr, ax + w, py(t));
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, ax - 4, py(t), tick_label(panel.log_scale ? std::pow(10.0, t) : t), 1.0, 0.5);
  }
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, ax, ay, w, h);
  cairo_stroke(cr);
  // The curves (points where a curve has few), and the legend.
  int legend = 0;
  for (size_t i = 0; i < panel.curves.size(); ++i) {
    const auto& c = panel.curves[i];
    const auto* rgb = kColors[i % 4];
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_set_line_width(cr, 1.5);
    bool started = false;
    size_t n = 0;
    for (const auto& p : c.points) {
      if (!usable(p)) continue;
      const double x = px(x_of(p)), y = py(y_of(p.value));
      started ? cairo_line_to(cr, x, y) : cairo_move_to(cr, x, y);
      started = true;
      ++n;
    }
    cairo_stroke(cr);
    if (n > 0 && n <= 30)
      for (const auto& p : c.points)
        if (usable(p)) {
          cairo_arc(cr, px(x_of(p)), py(y_of(p.value)), 2.2, 0, 2 * M_PI);
          cairo_fill(cr);
        }
    if (n == 0) continue;
    const double ly = ay + 12 + 14 * legend++;
    cairo_rectangle(cr, ax + w - 118, ly - 7, 10, 8);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, ax + w - 104, ly, c.label);
  }
}

cairo_status_t append(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace
#endif

std::string render_curves(const std::vector<CurvePanel>& panels, const std::string& format) {
  if (format != "png" && format != "svg")
    throw std::invalid_argument("learning curves: unknown picture format '" + format + "' (expected png or svg)");
  if (panels.empty()) throw std::invalid_argument("learning curves: no panel to draw");
#ifdef NMT_HAVE_CAIRO
  const int width = 2 * kPlotWidth, height = static_cast<int>(panels.size()) * kPlotHeight;
  std::string bytes;
  cairo_surface_t* surface = format == "png" ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height)
                                             : cairo_svg_surface_create_for_stream(append, &bytes, width, height);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  for (size_t i = 0; i < panels.size(); ++i)
    for (bool by_time : {false, true})
      plot(cr, by_time ? kPlotWidth : 0, static_cast<double>(i) * kPlotHeight, panels[i], by_time);
  cairo_destroy(cr);
  cairo_status_t status = CAIRO_STATUS_SUCCESS;
  if (format == "png") status = cairo_surface_write_to_png_stream(surface, append, &bytes);
  cairo_surface_finish(surface);
  if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error(std::string("learning curves: cannot draw: ") + cairo_status_to_string(status));
  return bytes;
#else
  throw std::runtime_error("this nmt was built without Cairo: learning curves are unavailable "
                           "(install libcairo2-dev and rebuild)");
#endif
}

}  // namespace nmt::viz
