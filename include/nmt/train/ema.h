#pragma once
/// @file ema.h
/// An exponential moving average (EMA) of the weights, kept beside the trained ones
/// (train.ema_decay): after each update, ema ← d·ema + (1 − d)·θ for every parameter, with the
/// warm-up d = min(decay, (1 + step) / (10 + step)) of TensorFlow's ExponentialMovingAverage so
/// that the early average is not dominated by the random initialisation (Polyak & Juditsky 1992;
/// Marian's exponential smoothing, fairseq's --ema-decay). Validation, best.pt and translation use
/// the average; the optimizer keeps updating the raw weights.
#include <cstdint>

#include "nmt/models/seq2seq.h"

namespace nmt::train {

/// The decay used after update `step` (1-based): min(decay, (1 + step) / (10 + step)).
double ema_decay_at(double decay, int64_t step);

/// ema ← d·ema + (1 − d)·model for every parameter, with d = ema_decay_at(decay, step); buffers
/// are copied. Both models must have the same architecture (parameter names and shapes) and
/// device; throws std::invalid_argument otherwise. With decay 0 the average is the raw weights.
void update_ema(models::Seq2SeqImpl& ema, models::Seq2SeqImpl& model, double decay, int64_t step);

/// Copies every parameter and buffer of `from` into `to` (same architecture; throws
/// std::invalid_argument otherwise).
void copy_weights(models::Seq2SeqImpl& to, models::Seq2SeqImpl& from);

}  // namespace nmt::train
