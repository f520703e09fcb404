/// @file score.cpp
#include "nmt/eval/score.h"

#include <cstdio>
#include <stdexcept>

#ifndef NMT_VERSION
#define NMT_VERSION "unknown"
#endif

namespace nmt::eval {

SegmentStats sum_stats(const std::vector<SegmentStats>& rows, size_t width) {
  SegmentStats total(rows.empty() ? width : rows.front().size(), 0.0);
  for (const auto& row : rows) {
    if (row.size() != total.size()) throw std::invalid_argument("sum_stats: ragged statistics");
    for (size_t k = 0; k < row.size(); ++k) total[k] += row[k];
  }
  return total;
}

std::string Signature::version_tag() { return std::string("nmt-") + NMT_VERSION; }

std::vector<std::pair<std::string, std::string>> Signature::fields() const {
  std::vector<std::pair<std::string, std::string>> out{{"nrefs", nrefs}};
  if (bootstrap_samples) out.emplace_back("bs", std::to_string(*bootstrap_samples));
  if (seed) out.emplace_back("seed", *seed);
  out.insert(out.end(), metric_fields.begin(), metric_fields.end());
  out.emplace_back("version", version);
  return out;
}

std::string Signature::str() const {
  std::string out;
  for (const auto& [key, value] : fields()) {
    if (!out.empty()) out += '|';
    out += key + ':' + value;
  }
  return out;
}

std::string format_fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string format_score(const Score& score, int width) {
  std::string out = score.name + " = " + format_fixed(score.score, width);
  // sacreBLEU prints the interval only when the resample mean is positive.
  if (score.confidence && score.confidence->mean > 0) {
    out += " (μ = " + format_fixed(score.confidence->mean, width) + " ± " +
           format_fixed(score.confidence->half_width, width) + ")";
  }
  if (!score.verbose.empty()) out += " " + score.verbose;
  return out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double value, int decimals) {
  std::string s = format_fixed(value, decimals);
  const size_t dot = s.find('.');
  if (dot == std::string::npos) return s + ".0";
  size_t end = s.size();
  while (end > dot + 2 && s[end - 1] == '0') --end;
  return s.substr(0, end);
}

std::string format_score_json(const Score& score, const Signature& signature, int width,
                              int indent) {
  const std::string sig = signature.str();
  std::vector<std::pair<std::string, std::string>> items{
      {"name", json_string(score.name)},
      {"score", json_number(score.score, width)},
      {"signature", json_string(sig)}};
  if (score.confidence && score.confidence->mean > 0) {
    const std::string mean = format_fixed(score.confidence->mean, width);
    const std::string var = format_fixed(score.confidence->half_width, width);
    items.emplace_back("confidence_mean", json_number(score.confidence->mean, width));
    items.emplace_back("confidence_var", json_number(score.confidence->half_width, width));
    items.emplace_back("confidence", json_string("μ = " + mean + " ± " + var));
  }
  if (!score.verbose.empty()) items.emplace_back("verbose_score", json_string(score.verbose));
  for (const auto& [key, value] : signature.fields()) items.emplace_back(key, json_string(value));

  const std::string pad = indent < 0 ? "" : std::string(static_cast<size_t>(indent), ' ');
  const std::string sep = indent < 0 ? ", " : ",\n";
  std::string out = indent < 0 ? "{" : "{\n";
  for (size_t i = 0; i < items.size(); ++i) {
    out += pad + json_string(items[i].first) + ": " + items[i].second;
    out += i + 1 < items.size() ? sep : (indent < 0 ? "" : "\n");
  }
  return out + "}";
}

}  // namespace nmt::eval
