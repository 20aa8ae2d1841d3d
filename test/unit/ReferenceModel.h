//===- ReferenceModel.h - Plain C++ reference of the model math -*- C++ -*-===//
//
// An independent, deliberately simple implementation of the forward pass of
// the decoder-only transformers that models/*.json describe (Hugging Face
// Mixtral/Llama conventions, DESIGN.md section 4 rule 7). The compiled host
// code is checked against it, so it shares nothing with the compiler: it
// depends only on models/ModelConfig.h and the standard library.
//
// Every intermediate value is a double; weights are read as f32 and results
// are returned as f32. Each call recomputes the whole sequence (no KV cache):
// slow, but obviously correct for the small test models.
//
// Malformed inputs (empty sequence, token id outside the vocabulary, weight
// of the wrong size, inconsistent config) throw std::invalid_argument.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TEST_UNIT_REFERENCEMODEL_H
#define MOEC_TEST_UNIT_REFERENCEMODEL_H

#include "models/ModelConfig.h"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace moec::reference {

/// Returns the whole tensor `name` as row-major f32 (shape as in the
/// checkpoint). The reference checks the number of elements and throws
/// std::invalid_argument on a mismatch; a missing tensor is the callee's
/// business (it should throw).
using WeightFn = std::function<std::vector<float>(const std::string &name)>;

/// Logits [tokens.size(), vocab] (row-major) of one sequence whose tokens sit
/// at positions 0..n-1. Throws std::invalid_argument for an empty sequence, a
/// token id outside [0, vocab), an inconsistent config or a weight whose size
/// does not match its shape.
std::vector<float> forward(const moec::ModelConfig &config,
                           const WeightFn &weights,
                           const std::vector<int32_t> &tokens);

/// Greedy decoding: appends `steps` argmax tokens (lowest index wins ties) to
/// `prompt` by re-running forward on the whole sequence; returns only the new
/// tokens. Throws std::invalid_argument as forward does, and for steps < 0.
std::vector<int32_t> greedyGenerate(const moec::ModelConfig &config,
                                    const WeightFn &weights,
                                    std::vector<int32_t> prompt, int64_t steps);

/// Rotary embedding of one head vector (even size Dh) at `position`: pair i
/// (i in [0, Dh/2)) turns by position * theta^(-2i/Dh). RotateHalf pairs
/// element i with i + Dh/2, Interleaved pairs 2i with 2i+1; in both, the
/// pair (a, b) becomes (a cos - b sin, b cos + a sin). Used by forward;
/// exposed for tests.
std::vector<double> applyRope(std::vector<double> head, int64_t position,
                              const moec::RopeConfig &rope);

/// Router of a mixture of experts: softmax over all `logits`, then the `topK`
/// largest probabilities (ties: lower expert index first), rescaled to sum to
/// one when `normalize`. Returns (expert, weight) pairs, largest first. Used
/// by forward; exposed for tests.
std::vector<std::pair<int64_t, double>>
routeTopK(const std::vector<double> &logits, int64_t topK, bool normalize);

} // namespace moec::reference

#endif // MOEC_TEST_UNIT_REFERENCEMODEL_H
