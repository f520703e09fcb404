#include "nmt/openmp_env.h"

#include <cstdlib>

namespace nmt {

bool set_openmp_waiting() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return false;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  setenv("GOMP_SPINCOUNT", kOpenMpSpinCount, 1);
  return true;
}

bool set_openblas_waiting() {
  if (std::getenv("OPENBLAS_THREAD_TIMEOUT") != nullptr) return false;
  setenv("OPENBLAS_THREAD_TIMEOUT", kOpenBlasThreadTimeout, 1);
  return true;
}

bool set_thread_waiting() {
  const bool openmp = set_openmp_waiting();
  const bool openblas = set_openblas_waiting();
  return openmp || openblas;
}

}  // namespace nmt
