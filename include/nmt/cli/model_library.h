#pragma once
/// @file model_library.h
/// The split of the `nmt` program into a small front end and the model library.
///
/// The executable `nmt` links neither LibTorch nor OpenMP: `nmt --help`, `--version` and
/// `nmt eval` without a model run in it and start in milliseconds. Every other command is run by
/// the model library `libnmt_commands.so` (LibTorch, all subcommands), which the front end loads
/// with dlopen after setting how OpenMP workers wait (nmt/openmp_env.h; libgomp reads it when it
/// is loaded, so the process is never re-executed for it; see nmt::tune_process).

namespace nmt::cli {

/// The model library's entry point, exported unmangled as "nmt_commands_main": parses the whole
/// command line with every subcommand registered and runs it; returns the exit status.
extern "C" int nmt_commands_main(int argc, char** argv);

/// The front end's test: does this command line need the model library? True for every
/// subcommand but `eval`, and for `eval -m/--model`; false for `--help`, `--version`, no
/// subcommand or an unknown one (the front end reports those itself).
bool needs_model_library(int argc, const char* const* argv);

}  // namespace nmt::cli
