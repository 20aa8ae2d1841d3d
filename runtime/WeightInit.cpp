//===- WeightInit.cpp - One rank's weights, as f32 ------------------------===//

#include "runtime/WeightInit.h"
#include "runtime/Artifact.h"
#include "runtime/HalfFloat.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace moert;

namespace {
/// splitmix64: a small, well-mixed generator; the same on every machine.
uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

int64_t moert::shardElements(const WeightSpec &spec) {
  WeightSpec f32 = spec;
  f32.dtype = DType::F32;
  int64_t bytes = WeightLoader::partBytes(f32);
  return bytes < 0 ? -1 : bytes / 4;
}

void moert::randomWeightShard(const WeightSpec &spec, uint64_t seed,
                              int64_t rankInStage, int64_t groupSize,
                              std::vector<float> &full, float *out) {
  int64_t elements = 1;
  for (int64_t extent : spec.fullShape)
    elements *= extent;
  full.resize(elements);
  if (endsWith(spec.name, "norm.weight")) {
    std::fill(full.begin(), full.end(), 1.0f);
  } else if (endsWith(spec.name, ".bias")) {
    std::fill(full.begin(), full.end(), 0.0f);
  } else {
    int64_t fanIn = spec.fullShape.empty() ? 1 : spec.fullShape.back();
    double bound = 1.0 / std::sqrt(static_cast<double>(fanIn));
    uint64_t state = seed ^ fnv1a64(spec.name);
    for (float &value : full) {
      double unit = (splitmix64(state) >> 11) * 0x1.0p-53; // [0, 1)
      value = static_cast<float>((2.0 * unit - 1.0) * bound);
    }
  }
  WeightSpec f32 = spec;
  f32.dtype = DType::F32;
  std::string error;
  // The artifact reader checked every shard against its shape.
  copyShard(f32, full.data(), rankInStage, groupSize, out, error);
}

bool moert::loadWeightShards(
    const std::string &checkpoint, const std::vector<WeightSpec> &specs,
    int64_t rankInStage, int64_t groupSize, std::string &error,
    const std::function<void(const WeightSpec &, const std::vector<float> &)>
        &consume,
    const std::function<void(int64_t, int64_t)> &progress) {
  std::unique_ptr<WeightLoader> loader = WeightLoader::open(checkpoint, error);
  if (!loader)
    return false;
  int64_t total = 0, done = 0;
  for (const WeightSpec &spec : specs)
    total += WeightLoader::partBytes(spec);
  std::vector<char> scratch;
  std::vector<float> values;
  for (WeightSpec spec : specs) {
    int64_t elements = shardElements(spec);
    // The checkpoint's own element type, widened below.
    if (const TensorInfo *tensor = loader->find(spec.name)) {
      if (tensor->dtype != DType::BF16 && tensor->dtype != DType::F16 &&
          tensor->dtype != DType::F32) {
        error = "weight '" + spec.name + "' is " + dtypeName(tensor->dtype) +
                " in the checkpoint; the runtime reads BF16, F16 and F32";
        return false;
      }
      spec.dtype = tensor->dtype;
    }
    int64_t bytes = WeightLoader::partBytes(spec);
    if (bytes < 0 || elements < 0 ||
        bytes / dtypeSize(spec.dtype) != elements) {
      error = "weight '" + spec.name + "': its shard does not match the plan";
      return false;
    }
    scratch.resize(bytes);
    if (!loader->load(spec, rankInStage, groupSize, scratch.data(), error))
      return false;
    values.resize(elements);
    for (int64_t i = 0; i < elements; ++i) {
      if (spec.dtype == DType::F32) {
        std::memcpy(&values[i], scratch.data() + 4 * i, 4);
      } else {
        uint16_t half;
        std::memcpy(&half, scratch.data() + 2 * i, 2);
        if (spec.dtype == DType::F16) {
          values[i] = halfToFloat(half);
        } else {
          values[i] = bf16ToFloat(half);
        }
      }
    }
    consume(spec, values);
    done += bytes;
    if (progress)
      progress(done, total);
  }
  return true;
}
