#pragma once
/// @file schedule.h
/// Learning-rate schedules: constant; decay on validation plateau; Noam (Vaswani et al. 2017):
/// linear warm-up to the peak rate, then inverse-square-root decay, normalised so that the
/// peak equals train.lr: lr · min(step / warmup, sqrt(warmup / step)).
#include <cstdint>

#include "nmt/config.h"

namespace nmt::train {

class LrSchedule {
 public:
  explicit LrSchedule(const TrainConfig& config);
  /// Rate to use for update number `step` (1-based).
  double rate(int64_t step) const;
  /// Report a validation result; for `plateau`, decays the rate after lr_patience validations
  /// without improvement. Returns true when the rate changed.
  bool on_validation(bool improved);
  double base() const { return base_; }

  // Persisted in checkpoints.
  double base_;        ///< current base rate (decayed by plateau)
  int bad_count_ = 0;  ///< validations without improvement since the last decay

 private:
  TrainConfig config_;
};

}  // namespace nmt::train
