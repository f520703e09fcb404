#pragma once
/// @file validators.h
/// CLI11 validators with plain messages (CLI11's PositiveNumber prints its 309-digit range), and
/// the option lines that the commands loading a model (translate, serve, align) share.
#include <string>

#include <CLI/CLI.hpp>

namespace nmt::cli {

/// An integer ≥ 1: "must be a positive integer, got '0'".
inline CLI::Validator positive_integer() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          size_t used = 0;
          const long long n = std::stoll(value, &used);
          if (used == value.size() && n >= 1) return "";
        } catch (const std::exception&) {
        }
        return "must be a positive integer, got '" + value + "'";
      },
      "INT>=1");
}

/// A number ≥ 0: "must be a number >= 0, got '-1'".
inline CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          size_t used = 0;
          const double x = std::stod(value, &used);
          if (used == value.size() && x >= 0) return "";
        } catch (const std::exception&) {
        }
        return "must be a number >= 0, got '" + value + "'";
      },
      "NUMBER>=0");
}

/// `--threads` and `--device` of a command that loads a model directory, into `threads` and `device`.
inline void add_model_runtime_options(CLI::App* cmd, int& threads, std::string& device) {
  cmd->add_option("--threads", threads, "CPU threads (default: the model's train.threads)");
  cmd->add_option("--device", device, "cpu | cuda | cuda:N | auto");
}

/// The `--precision` option of the decoding commands (translate, serve), into `target`.
inline CLI::Option* add_decoding_precision(CLI::App* cmd, std::string& target) {
  return cmd
      ->add_option("--precision", target,
                   "auto | fp32 | bf16 | int8: bf16 matrix products (auto: where faster), or int8 linear layers "
                   "(dynamic quantisation, CPU); default: the model's train.precision")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "int8"}));
}

}  // namespace nmt::cli
