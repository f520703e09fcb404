#pragma once
/// @file launch.h
/// How `nmt train` becomes one rank of a data-parallel run: from the environment that torchrun
/// (and our own `--nproc` launcher) sets, or by starting the local ranks itself.
#include <string>
#include <vector>

#include "nmt/train/distributed.h"

namespace nmt::cli {

/// The torchrun environment: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
/// MASTER_PORT (Slurm's srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID when RANK is unset).
/// Without WORLD_SIZE (or SLURM_NTASKS) the result is single-process. Throws std::runtime_error
/// naming the variable that is not a number in range.
train::DistributedEnv distributed_env_from_environment();

/// `nmt train --nproc N`: runs this program's command line (`args`, without --nproc) as N local
/// ranks on 127.0.0.1 and a free port, and waits for them. When a rank fails, the others get a
/// few seconds to notice and exit, then SIGTERM. A SIGINT/SIGTERM to the launcher is passed on.
/// Throws std::runtime_error naming the first rank that failed (exit status or signal).
void launch_local_ranks(int nproc, const std::vector<std::string>& args);

/// In a rank started by launch_local_ranks(): asks the kernel for SIGTERM when the launcher dies
/// (killed with SIGKILL, say), so that no rank trains on as an orphan. Does nothing elsewhere.
void stop_with_launcher();

/// A TCP port on 127.0.0.1 that is free now (the kernel's pick for port 0). Throws
/// std::runtime_error when no socket can be bound.
int free_loopback_port();

/// This process's command line (from /proc/self/cmdline), argv[0] first.
std::vector<std::string> own_command_line();

}  // namespace nmt::cli
