//===- CudaProfile.cpp - Timing each step of a plan on the GPU ------------===//

#ifdef MOEC_HAVE_CUDA
#include "runtime/CudaExecutorState.h"

using namespace moert;
using namespace moert::cuda;

bool moert::cuda::profileSteps(
    CudaExecutor::State &s, const ExecutionInfo &plan, const StepInputs &in,
    const std::vector<std::vector<int64_t>> &sizes,
    const std::vector<void *> &data,
    const std::function<bool(const StepInfo &)> &runStep,
    std::vector<KernelTiming> &timings, int repeats, std::string &error) {
  auto bytesOf = [&](int64_t id) {
    return static_cast<double>(elementCount(sizes[id])) *
           dtypeSize(plan.buffers[id].dtype);
  };
  // K/V rows attention reads: every token's cached positions.
  double cachedRows = 0;
  for (int32_t position : in.positions)
    cachedRows += position + 1;
  for (size_t index = 0; index < plan.steps.size(); ++index) {
    const StepInfo &step = plan.steps[index];
    if ((step.kind != StepInfo::Kind::Kernel &&
         step.kind != StepInfo::Kind::Gemm &&
         step.kind != StepInfo::Kind::GroupedGemm) ||
        !step.runsAt(scaleOf(in)))
      continue;
    KernelTiming timing;
    timing.step = static_cast<int64_t>(index);
    if (step.kind == StepInfo::Kind::Gemm) {
      int64_t m = sizes[step.a][0], k = sizes[step.a][1], n = sizes[step.b][0];
      timing.name = "gemm " + std::to_string(m) + "x" + std::to_string(n) +
                    "x" + std::to_string(k);
      timing.bytes = bytesOf(step.a) + bytesOf(step.b) + bytesOf(step.c);
      timing.flops = 2.0 * m * n * k;
    } else if (step.kind == StepInfo::Kind::GroupedGemm) {
      // Every row by its expert's weights; the experts routed to read once.
      int64_t m = sizes[step.a][0], k = sizes[step.a][1], n = sizes[step.b][1];
      timing.name = "grouped_gemm " + std::to_string(m) + "x" +
                    std::to_string(n) + "x" + std::to_string(k) + " over " +
                    std::to_string(sizes[step.b][0]) + " experts";
      timing.bytes = bytesOf(step.a) + bytesOf(step.b) + bytesOf(step.c);
      timing.flops = 2.0 * m * n * k;
    } else {
      timing.name = step.kernel;
      // Experts routed in this step, from the offsets the FFN reads.
      double expertShare = 1;
      for (int64_t id : step.args)
        if (plan.buffers[id].shape.size() == 1 &&
            plan.buffers[id].dtype == DType::I32 &&
            !plan.buffers[id].shape[0].symbol &&
            plan.buffers[id].shape[0].factor > 2 &&
            step.kernel.find("expert") != std::string::npos) {
          std::vector<int32_t> offsets(plan.buffers[id].shape[0].factor);
          if (!s.check(cudaMemcpy(offsets.data(), data[id],
                                  offsets.size() * sizeof(int32_t),
                                  cudaMemcpyDeviceToHost),
                       "reading the expert offsets", error))
            return false;
          int64_t used = 0;
          for (size_t e = 0; e + 1 < offsets.size(); ++e)
            used += offsets[e + 1] > offsets[e];
          expertShare = static_cast<double>(used) / (offsets.size() - 1);
        }
      for (int64_t id : step.args) {
        const BufferInfo &buffer = plan.buffers[id];
        if (buffer.kind == BufferInfo::Kind::KCache ||
            buffer.kind == BufferInfo::Kind::VCache)
          timing.bytes += (step.kernel.find("attend") != std::string::npos
                               ? cachedRows
                               : static_cast<double>(in.tokens.size())) *
                          plan.kvWidth * dtypeSize(buffer.dtype);
        else if (buffer.kind == BufferInfo::Kind::Weight &&
                 buffer.shape.size() == 3)
          timing.bytes += bytesOf(id) * expertShare;
        else
          timing.bytes += bytesOf(id);
      }
      // Attention: Q K^T and P V, 2 x head_dim flops each per (query head,
      // cached position), so 4 x (heads x head_dim) per position a token
      // attends to.
      if (step.kernel.find("attend") != std::string::npos &&
          !step.args.empty() && sizes[step.args[0]].size() == 2)
        timing.flops = 4.0 * sizes[step.args[0]][1] * cachedRows;
    }
    std::vector<float> times;
    for (int r = 0; r <= repeats; ++r) {
      float ms = 0;
      if (!s.check(cudaEventRecord(s.start, s.stream), "recording an event",
                   error) ||
          !runStep(step) ||
          !s.check(cudaEventRecord(s.stop, s.stream), "recording an event",
                   error) ||
          !s.check(cudaEventSynchronize(s.stop), "timing a kernel", error) ||
          !s.check(cudaEventElapsedTime(&ms, s.start, s.stop),
                   "timing a kernel", error))
        return false;
      if (r > 0) // the first run warms up
        times.push_back(ms);
    }
    std::sort(times.begin(), times.end());
    timing.milliseconds = times[times.size() / 2];
    timings.push_back(std::move(timing));
  }
  return true;
}
#endif // MOEC_HAVE_CUDA
