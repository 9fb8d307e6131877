#!/bin/sh
# Builds a kernel benchmark against the kernel sources (baseline x86-64, no -march: the ISAs are dispatched at run
# time as in the addon) and runs it:
#   bench/kernels.sh [--threads N] [--quick] [--all-types]   matmul (bench/kernels.cc)
#   bench/kernels.sh attention [positions]                    decode attention (bench/attention.cc)
set -e
cd "$(dirname "$0")/.."
mkdir -p build
bench=kernels
if [ "$1" = attention ]; then bench=attention; shift; fi
${CXX:-g++} -std=c++17 -O3 -pthread -Inative "bench/$bench.cc" native/common/cpu.cc native/common/huge_pages.cc \
  native/kernels/*.cc native/kernels/x86/*.cc -o "build/bench-$bench"
exec "build/bench-$bench" "$@"
