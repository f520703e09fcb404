#!/usr/bin/env bash
# Prints this machine's CPU for benchmark headers: /proc/cpuinfo's model name and its bf16
# matrix units, e.g. "Intel(R) Xeon(R) Processor (bf16 units: amx_bf16)" (the model name alone
# does not tell an AMX machine from another). Used by the benchmark scripts.
set -euo pipefail
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
units=$(grep -m1 '^flags' /proc/cpuinfo | grep -ow 'amx_bf16\|avx512_bf16' | sort -u | paste -sd, - || true)
echo "${model:-unknown CPU} (bf16 units: ${units:-none})"
