#include <cstdlib>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "nmt/openmp_env.h"

namespace {

/// Sets or unsets an environment variable for the test's scope and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value->c_str(), 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

TEST(OpenMpWaiting, SetsAShortSpinWhenTheUserSetNothing) {
  ScopedEnv policy("OMP_WAIT_POLICY", std::nullopt), spin("GOMP_SPINCOUNT", std::nullopt);
  EXPECT_TRUE(nmt::set_openmp_waiting());
  EXPECT_EQ(env("OMP_WAIT_POLICY"), "PASSIVE");
  EXPECT_EQ(env("GOMP_SPINCOUNT"), nmt::kOpenMpSpinCount);
  // A second call (the re-executed program, a nested nmt) finds them set and changes nothing.
  EXPECT_FALSE(nmt::set_openmp_waiting());
  EXPECT_EQ(env("GOMP_SPINCOUNT"), nmt::kOpenMpSpinCount);
}

TEST(OpenMpWaiting, LeavesAUsersWaitPolicyAlone) {
  ScopedEnv policy("OMP_WAIT_POLICY", "ACTIVE"), spin("GOMP_SPINCOUNT", std::nullopt);
  EXPECT_FALSE(nmt::set_openmp_waiting());
  EXPECT_EQ(env("OMP_WAIT_POLICY"), "ACTIVE");
  EXPECT_EQ(env("GOMP_SPINCOUNT"), std::nullopt);
}

TEST(OpenMpWaiting, LeavesAUsersSpinCountAlone) {
  ScopedEnv policy("OMP_WAIT_POLICY", std::nullopt), spin("GOMP_SPINCOUNT", "0");
  EXPECT_FALSE(nmt::set_openmp_waiting());
  EXPECT_EQ(env("OMP_WAIT_POLICY"), std::nullopt);
  EXPECT_EQ(env("GOMP_SPINCOUNT"), "0");
}

TEST(OpenBlasWaiting, SetsAShortTimeoutWhenTheUserSetNone) {
  ScopedEnv timeout("OPENBLAS_THREAD_TIMEOUT", std::nullopt);
  EXPECT_TRUE(nmt::set_openblas_waiting());
  EXPECT_EQ(env("OPENBLAS_THREAD_TIMEOUT"), nmt::kOpenBlasThreadTimeout);
  EXPECT_FALSE(nmt::set_openblas_waiting());  // found set: unchanged
  EXPECT_EQ(env("OPENBLAS_THREAD_TIMEOUT"), nmt::kOpenBlasThreadTimeout);
}

TEST(OpenBlasWaiting, LeavesAUsersTimeoutAlone) {
  ScopedEnv timeout("OPENBLAS_THREAD_TIMEOUT", "28");
  EXPECT_FALSE(nmt::set_openblas_waiting());
  EXPECT_EQ(env("OPENBLAS_THREAD_TIMEOUT"), "28");
}

TEST(OpenBlasWaiting, IsIndependentOfTheOpenMpVariables) {
  ScopedEnv policy("OMP_WAIT_POLICY", "ACTIVE"), spin("GOMP_SPINCOUNT", std::nullopt),
      timeout("OPENBLAS_THREAD_TIMEOUT", std::nullopt);
  EXPECT_FALSE(nmt::set_openmp_waiting());
  EXPECT_TRUE(nmt::set_openblas_waiting());
  EXPECT_EQ(env("GOMP_SPINCOUNT"), std::nullopt);
}

TEST(ThreadWaiting, SetsBothAndSaysWhetherItSetAnything) {
  {
    ScopedEnv policy("OMP_WAIT_POLICY", "ACTIVE"), spin("GOMP_SPINCOUNT", std::nullopt),
        timeout("OPENBLAS_THREAD_TIMEOUT", std::nullopt);
    EXPECT_TRUE(nmt::set_thread_waiting());  // the OpenMP settings are the user's; OpenBLAS's was unset
    EXPECT_EQ(env("OPENBLAS_THREAD_TIMEOUT"), nmt::kOpenBlasThreadTimeout);
    EXPECT_EQ(env("OMP_WAIT_POLICY"), "ACTIVE");
  }
  {
    ScopedEnv policy("OMP_WAIT_POLICY", std::nullopt), spin("GOMP_SPINCOUNT", std::nullopt),
        timeout("OPENBLAS_THREAD_TIMEOUT", "28");
    EXPECT_TRUE(nmt::set_thread_waiting());  // OpenBLAS's is the user's; the OpenMP ones were unset
    EXPECT_EQ(env("GOMP_SPINCOUNT"), nmt::kOpenMpSpinCount);
    EXPECT_EQ(env("OPENBLAS_THREAD_TIMEOUT"), "28");
    EXPECT_FALSE(nmt::set_thread_waiting());  // all set now
  }
}

}  // namespace
