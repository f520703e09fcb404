#pragma once
/// @file openmp_env.h
/// How ATen's OpenMP workers wait between parallel regions, set in the environment before
/// libgomp is loaded (it reads OMP_WAIT_POLICY and GOMP_SPINCOUNT then, and never again).
/// No LibTorch here: the front end calls it before it loads the model library.
///
/// The trade-off, measured on 2 cores (README, CPU performance notes): libgomp's default spins a
/// worker for 300,000 iterations (about 3 ms) after each region, which starves OpenBLAS's own
/// threads in fp32 products (337 against 1,000+ target tokens/s for the RNN); passive waiting
/// (no spinning) costs a futex wake-up at every parallel operator instead (about 40 µs:
/// 61 against 18 µs per small element-wise operator on 2 threads). A short spin of
/// kOpenMpSpinCount iterations (tens to a few hundred µs, by the CPU's pause latency) keeps the
/// workers awake across the back-to-back operators of a training step and lets them sleep
/// before an OpenBLAS product needs their core for long.

namespace nmt {

/// GOMP_SPINCOUNT set by set_openmp_waiting().
inline constexpr const char* kOpenMpSpinCount = "3000";

/// When neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set: sets OMP_WAIT_POLICY=PASSIVE (what
/// OpenMP runtimes other than libgomp follow) and GOMP_SPINCOUNT=kOpenMpSpinCount (libgomp then
/// spins that long before it sleeps), and returns true. Otherwise leaves the user's settings
/// alone and returns false.
bool set_openmp_waiting();

}  // namespace nmt
