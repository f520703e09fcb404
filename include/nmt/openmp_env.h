#pragma once
/// @file openmp_env.h
/// How the workers of the two thread pools wait between jobs: ATen's OpenMP workers (libgomp)
/// and OpenBLAS's own threads, which run the fp32 matrix products. Both read their settings
/// from the environment once, when their library is loaded, so these are set before that.
/// No LibTorch here: the front end calls them before it loads the model library.
///
/// The trade-off, measured on 2 cores (README, CPU performance notes): a worker that spins
/// after its job takes the core from the other pool's worker; one that sleeps must be woken
/// for its next job. libgomp's default spins a worker for 300,000 iterations (about 3 ms) after
/// each region, which starves OpenBLAS's threads in fp32 products (337 against 1,000+ target
/// tokens/s for the RNN); passive waiting (no spinning) costs a futex wake-up at every parallel
/// operator instead (about 40 µs: 61 against 18 µs per small element-wise operator on 2
/// threads). A short spin of kOpenMpSpinCount iterations (tens to a few hundred µs, by the CPU's
/// pause latency) keeps the workers awake across the back-to-back operators of a training step
/// and lets them sleep before an OpenBLAS product needs their core for long. OpenBLAS's
/// threads (the pthreads build) poll with sched_yield for 2^28 cycles (about 0.1 s) after each
/// product by default, so the OpenMP worker of every operator between two fp32 products shared
/// its core with one (1.8 million sched_yield calls in a bench run of 9 Transformer updates);
/// with a timeout of 2^kOpenBlasThreadTimeout cycles (about 20 µs, what a wake-up costs) they
/// sleep soon after and are woken by the next product: fp32 training +12-13% (Transformer and
/// RNN, means of 3 alternating rounds on one CPU), bf16 unchanged.

namespace nmt {

/// GOMP_SPINCOUNT set by set_openmp_waiting().
inline constexpr const char* kOpenMpSpinCount = "3000";

/// OPENBLAS_THREAD_TIMEOUT set by set_openblas_waiting(): OpenBLAS's threads poll for
/// 2^value cycles before they sleep (OpenBLAS accepts 4 to 30; 28 when unset).
inline constexpr const char* kOpenBlasThreadTimeout = "16";

/// When neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set: sets OMP_WAIT_POLICY=PASSIVE (what
/// OpenMP runtimes other than libgomp follow) and GOMP_SPINCOUNT=kOpenMpSpinCount (libgomp then
/// spins that long before it sleeps), and returns true. Otherwise leaves the user's settings
/// alone and returns false.
bool set_openmp_waiting();

/// When OPENBLAS_THREAD_TIMEOUT is not set: sets it to kOpenBlasThreadTimeout and returns true;
/// otherwise leaves the user's setting alone and returns false. Other BLAS libraries ignore it.
bool set_openblas_waiting();

/// Both of the above (each whatever the other returns); true when either set anything, i.e.
/// when a library loaded before the call would now read other settings.
bool set_thread_waiting();

}  // namespace nmt
