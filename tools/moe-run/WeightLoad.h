//===- WeightLoad.h - Filling a model's weights, saying so ------*- C++ -*-===//
//
// Every moe-run path that fills a model's weights goes through fillWeights():
// generate and bench in one process, each rank under mpirun, and the draft
// model of speculative decoding. A load from a checkpoint says on stderr how
// far it is (every half second) and how long it took; random weights are
// made silently.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_WEIGHTLOAD_H
#define MOEC_TOOLS_MOE_RUN_WEIGHTLOAD_H

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace moert {

/// Bytes in decimal units with one decimal: "512 B", "1.2 GB".
std::string formatBytes(int64_t bytes);

/// The stderr lines of one weight load: "moe-run: [WHO: ]loading weights:
/// DONE of TOTAL" at most every half second, then "moe-run: [WHO: ]loaded
/// the weights from CHECKPOINT in T s".
class WeightLoadReport {
public:
  /// `who` ("", "draft", "rank 2") names the model in the lines.
  WeightLoadReport(std::string checkpoint, std::string who);
  /// The `progress(bytesDone, bytesTotal)` callback loadWeights() takes;
  /// valid while this report lives.
  std::function<void(int64_t, int64_t)> progress();
  /// Prints that the load finished, and its time.
  void finish() const;

private:
  using Clock = std::chrono::steady_clock;
  std::string checkpoint, prefix;
  Clock::time_point start, last;
};

/// Fills `model`'s weights (a LocalRunner or a RankExecutor): its part of
/// safetensors `checkpoint`, reported on stderr as WeightLoadReport says,
/// or deterministic ones from `seed` when `checkpoint` is empty. `who` as
/// for WeightLoadReport. False with `error` set.
template <typename Model>
bool fillWeights(Model &model, const std::string &checkpoint, uint64_t seed,
                 const std::string &who, std::string &error) {
  if (checkpoint.empty())
    return model.initRandomWeights(seed, error);
  WeightLoadReport report(checkpoint, who);
  if (!model.loadWeights(checkpoint, error, report.progress()))
    return false;
  report.finish();
  return true;
}

} // namespace moert

#endif // MOEC_TOOLS_MOE_RUN_WEIGHTLOAD_H
