//===- Generator.h - Token generation for one sequence ----------*- C++ -*-===//
//
// The simplest serving loop: one sequence, prefill of the whole prompt in
// one step, then one decode step per token, sampled with runtime/Sampler.h.
// Its KV blocks come from a KVBlockManager over the executor's cache. The
// continuous-batching scheduler (issue 7) replaces it for many sequences.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_GENERATOR_H
#define MOEC_RUNTIME_GENERATOR_H

#include "runtime/ModelRunner.h"
#include "runtime/Sampler.h"

#include <functional>

namespace moert {

/// What to generate.
struct GenerateOptions {
  int64_t maxNewTokens = 16;
  SamplingParams sampling;
  /// Generation stops after producing this token (-1: none).
  int32_t stopToken = -1;
};

/// Timings of one generate call, in seconds.
struct GenerateStats {
  int64_t promptTokens = 0;
  int64_t outputTokens = 0;
  /// From the call to the first output token (the prefill step + sampling).
  double timeToFirstToken = 0;
  /// Median time of the decode steps after the first token (0 if none).
  double timePerOutputToken = 0;
};

/// Generates up to options.maxNewTokens tokens after `prompt`, calling
/// `onToken` with each as soon as it is sampled. False with `error` set for
/// a bad request (empty prompt, token out of range, more tokens than the
/// cache or the model's context holds); the executor stays usable.
bool generate(ModelRunner &executor, const std::vector<int32_t> &prompt,
              const GenerateOptions &options, int64_t maxContext,
              const std::function<void(int32_t)> &onToken,
              std::vector<int32_t> &output, GenerateStats &stats,
              std::string &error);

} // namespace moert

#endif // MOEC_RUNTIME_GENERATOR_H
