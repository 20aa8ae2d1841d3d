//===- ClusterConfig.h - Cluster descriptions -------------------*- C++ -*-===//
//
// The machines a model is planned for: nodes of GPUs, each GPU's memory,
// bandwidth and peak rates, and the links between them. Read from a JSON file
// (documented in models/README.md, "Cluster descriptions") or taken from a
// built-in preset. No MLIR/LLVM dependency; no exception leaves this library.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_MODELS_CLUSTERCONFIG_H
#define MOEC_MODELS_CLUSTERCONFIG_H

#include "models/ModelConfig.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moec {

/// One GPU.
struct GPUConfig {
  /// e.g. "A100-SXM4-40GB".
  std::string name;
  /// Device memory in bytes.
  int64_t memoryBytes = 0;
  /// Memory the runtime and CUDA keep for themselves (context, cuBLAS
  /// workspace, fragmentation), in bytes; planning uses memoryBytes - this.
  int64_t reservedBytes = 0;
  /// HBM bandwidth in bytes/s.
  double memoryBandwidth = 0;
  /// Dense peak in FLOP/s for bf16, f16, f32 and fp8 (0 = not supported).
  double peakFlopsBF16 = 0;
  double peakFlopsF16 = 0;
  double peakFlopsF32 = 0;
  double peakFlopsFP8 = 0;
};

/// A cluster of identical nodes.
struct ClusterConfig {
  std::string name;
  int64_t nodes = 0;
  int64_t gpusPerNode = 0;
  GPUConfig gpu;
  /// Bandwidth between two GPUs of a node (NVLink), bytes/s per direction.
  double intraNodeBandwidth = 0;
  /// Bandwidth from one GPU to another node (InfiniBand/Ethernet), bytes/s
  /// per direction.
  double interNodeBandwidth = 0;

  int64_t getNumGPUs() const { return nodes * gpusPerNode; }
  /// Bytes a plan may use on one GPU.
  int64_t getUsableBytes() const { return gpu.memoryBytes - gpu.reservedBytes; }
  /// Peak FLOP/s for arithmetic in `type` (0 if unsupported).
  double getPeakFlops(DType type) const;
};

/// Parses and validates a cluster description; errors as parseModelConfig's
/// (`$.gpu.memory_gib: expected a positive number, got -1`). Never throws.
std::optional<ClusterConfig> parseClusterConfig(std::string_view text,
                                                std::vector<std::string> &errors);

/// Reads `path` and parses it with parseClusterConfig. Never throws.
std::optional<ClusterConfig> loadClusterConfig(const std::string &path,
                                               std::vector<std::string> &errors);

/// Names of the built-in GPU presets: "a100-40gb", "a100-80gb", "h100-80gb",
/// "h200".
std::vector<std::string> getClusterPresetNames();

/// A cluster of `nodes` x `gpusPerNode` GPUs of preset `name`.
std::optional<ClusterConfig> getClusterPreset(std::string_view name,
                                              int64_t nodes,
                                              int64_t gpusPerNode,
                                              std::vector<std::string> &errors);

/// Resolves a `--cluster` argument: `PRESET:NODESxGPUS` (e.g.
/// `a100-40gb:16x8`), `PRESET` (one node of 8 GPUs), or a path to a JSON file.
std::optional<ClusterConfig> resolveCluster(const std::string &spec,
                                            std::vector<std::string> &errors);

/// Serialises `config` in the JSON format (canonical: every field, keys in
/// the documented order, two-space indentation, trailing newline).
std::string toJson(const ClusterConfig &config);

} // namespace moec

#endif // MOEC_MODELS_CLUSTERCONFIG_H
