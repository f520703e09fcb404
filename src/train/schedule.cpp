#include "nmt/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace nmt::train {

LrSchedule::LrSchedule(const TrainConfig& config) : base_(config.lr), config_(config) {}

double LrSchedule::rate(int64_t step) const {
  if (config_.lr_schedule != nmt::LrSchedule::Noam) return base_;
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  const double w = config_.warmup_steps;
  return base_ * std::min(s / w, std::sqrt(w / s));
}

bool LrSchedule::on_validation(bool improved) {
  if (config_.lr_schedule != nmt::LrSchedule::Plateau) return false;
  if (improved) {
    bad_count_ = 0;
    return false;
  }
  if (++bad_count_ <= config_.lr_patience) return false;
  bad_count_ = 0;
  const double next = std::max(config_.min_lr, base_ * config_.lr_decay);
  const bool changed = next != base_;
  base_ = next;
  return changed;
}

}  // namespace nmt::train
