//===- KernelBench.h - moe-run ARTIFACT bench-kernels -----------*- C++ -*-===//
//
// Times every kernel and GEMM of one step of a cuda artifact on the GPU
// (runtime/CudaExecutor.h, profileStep): a decode step of a batch at a
// context length, or a prefill chunk. Each kernel is replayed on the step's
// buffers after a warm-up and timed with CUDA events (median), and printed
// with the bytes it must move, its GB/s and the share of the measured
// device-to-device copy rate, or, for GEMMs, TFLOP/s.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_KERNELBENCH_H
#define MOEC_TOOLS_MOE_RUN_KERNELBENCH_H

#include <string>
#include <vector>

/// Runs `moe-run ARTIFACT bench-kernels ARGS...`; prints its own errors as
/// one line and returns the exit status (0, 1, or 2 for a bad command line).
int benchKernelsCommand(const std::string &artifactPath,
                        const std::vector<std::string> &args);

#endif // MOEC_TOOLS_MOE_RUN_KERNELBENCH_H
