//===- WeightInit.h - One rank's weights, as f32 ----------------*- C++ -*-===//
//
// What every executor does to get its weights: deterministic random values
// (drawn for the whole checkpoint tensor, then this rank's part cut from it,
// so every partitioning sees the same model) or a safetensors checkpoint
// widened to f32. One tensor at a time, so a device executor never holds
// more than one f32 tensor on the host.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_WEIGHTINIT_H
#define MOEC_RUNTIME_WEIGHTINIT_H

#include "runtime/Safetensors.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moert {

/// Elements of one rank's part of `spec`; -1 for an invalid spec.
int64_t shardElements(const WeightSpec &spec);

/// Writes rank `rankInStage`'s part of weight `spec` drawn from `seed` to
/// `out` (shardElements values): uniform in ±1/sqrt(fan-in) for matrices
/// and embeddings, 1 for norm scales, 0 for biases; the same on every
/// machine. `full` is scratch.
void randomWeightShard(const WeightSpec &spec, uint64_t seed,
                       int64_t rankInStage, int64_t groupSize,
                       std::vector<float> &full, float *out);

/// Calls `consume(spec, values)` with this rank's part of each weight of
/// `specs` from safetensors `checkpoint` (a file, an index .json or a
/// folder), bf16/f16 widened to f32, and `progress(bytesDone, bytesTotal)`
/// after each. False with `error` naming the tensor on a missing or
/// mismatched weight.
bool loadWeightShards(
    const std::string &checkpoint, const std::vector<WeightSpec> &specs,
    int64_t rankInStage, int64_t groupSize, std::string &error,
    const std::function<void(const WeightSpec &, const std::vector<float> &)>
        &consume,
    const std::function<void(int64_t, int64_t)> &progress = {});

} // namespace moert

#endif // MOEC_RUNTIME_WEIGHTINIT_H
