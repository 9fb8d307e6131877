#!/bin/sh
# Builds bench/kernels.cc against the kernel sources (baseline x86-64, no -march: the ISAs are dispatched at run
# time as in the addon) and runs it. Arguments go to the benchmark: [--threads N] [--quick] [--all-types].
set -e
cd "$(dirname "$0")/.."
mkdir -p build
${CXX:-g++} -std=c++17 -O3 -pthread -Inative bench/kernels.cc native/common/cpu.cc native/kernels/*.cc \
  native/kernels/x86/*.cc -o build/bench-kernels
exec build/bench-kernels "$@"
