//===- Safetensors.h - Hugging Face safetensors weight loading --*- C++ -*-===//
//
// Reads checkpoints in the safetensors format (an 8-byte little-endian header
// length, a JSON header naming every tensor, then the raw data) through a
// read-only mmap, either one file or a sharded checkpoint described by a
// `model.safetensors.index.json`. The WeightLoader copies exactly the part of
// a tensor a rank owns under the shard the compiler planned (splits per
// dimension, optionally over contiguous chunks such as the gate and up halves
// of a fused gate_up projection) into a contiguous, row-major buffer.
//
// No exception leaves this API: every failure is a `false`/null return with a
// message naming the file and the tensor.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_SAFETENSORS_H
#define MOEC_RUNTIME_SAFETENSORS_H

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moert {

/// Element types the runtime binds weights in.
enum class DType { BF16, F16, F32, F8E4M3, I32, I64 };

/// Bytes per element of `dtype`.
int64_t dtypeSize(DType dtype);
/// The safetensors spelling of `dtype` ("BF16", "F8_E4M3", ...).
const char *dtypeName(DType dtype);
/// Parses a safetensors dtype name; false for names not in DType.
bool parseDType(const std::string &name, DType &dtype);

/// One weight a rank needs, as the compiler describes it.
struct WeightSpec {
  /// Checkpoint (Hugging Face) name, e.g. "model.layers.0.mlp.gate.weight".
  std::string name;
  /// Shape of the whole tensor in the checkpoint.
  std::vector<int64_t> fullShape;
  /// Element type the model binds; must equal the checkpoint's.
  DType dtype = DType::BF16;
  /// Dimension i is cut into splits[i] equal parts; empty = whole tensor.
  std::vector<int64_t> splits;
  /// Dimension i is first viewed as chunks[i] contiguous chunks, each cut
  /// into splits[i] parts; a rank's part of the dimension is its part of
  /// every chunk, concatenated in chunk order. Empty = one chunk per dim.
  std::vector<int64_t> chunks;
};

/// One tensor of a safetensors file; `data` points into the mapping.
struct TensorInfo {
  std::string name;
  DType dtype = DType::BF16;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  /// Bytes at `data` (product(shape) * dtypeSize(dtype)).
  int64_t numBytes = 0;
};

/// A validated, memory-mapped safetensors file.
class SafetensorsFile {
public:
  /// Maps `path` read-only and validates its header and every entry. On
  /// failure returns null and sets `error` (which names the file).
  static std::unique_ptr<SafetensorsFile> open(const std::string &path,
                                               std::string &error);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;

  /// The path the file was opened with.
  const std::string &path() const { return filePath; }
  /// Tensor names, sorted ("__metadata__" excluded).
  std::vector<std::string> names() const;
  /// Number of tensors.
  size_t size() const { return tensors.size(); }
  /// Whether the file holds tensor `name`.
  bool has(const std::string &name) const { return tensors.count(name) != 0; }
  /// Tensor `name`, or null. Valid while the file lives.
  const TensorInfo *find(const std::string &name) const;

private:
  SafetensorsFile() = default;
  bool parseHeader(std::string &error);

  std::string filePath;
  void *mapping = nullptr;
  size_t mappingSize = 0;
  std::map<std::string, TensorInfo> tensors;
};

/// Copies the part of `spec` (whole tensor at `full`, row-major, in
/// spec.dtype) that `rank` of a group of `groupSize` ranks holds into
/// `destination`, as WeightLoader::load does. False with `error` (naming the
/// weight) when the shard does not fit the shape or the group.
bool copyShard(const WeightSpec &spec, const void *full, int64_t rank,
               int64_t groupSize, void *destination, std::string &error);

/// Loads the rank-local parts of weights from a whole checkpoint.
class WeightLoader {
public:
  /// Opens a checkpoint. `path` is a .safetensors file, an index .json whose
  /// "weight_map" maps names to files in its folder, or a folder holding
  /// `model.safetensors.index.json`, else every `*.safetensors` file in it.
  static std::unique_ptr<WeightLoader> open(const std::string &path,
                                            std::string &error);

  /// Copies the part of `spec` that `rank` of a group of `groupSize` ranks
  /// holds into `destination` (partBytes(spec) bytes, contiguous, row-major,
  /// local shape = fullShape / splits per dimension). Parts are numbered
  /// row-major over the split dimensions; rank r holds part r * P / groupSize
  /// where P = product(splits). Checks name, dtype, full shape and shard;
  /// on failure writes nothing and sets `error`.
  bool load(const WeightSpec &spec, int64_t rank, int64_t groupSize,
            void *destination, std::string &error);

  /// Bytes one rank's part of `spec` occupies; -1 if splits/chunks do not
  /// match the rank of fullShape or do not divide it.
  static int64_t partBytes(const WeightSpec &spec);

  /// Calls `callback(bytesDone, bytesTotal)` after each successful load.
  /// bytesDone counts the bytes copied since this call; bytesTotal is
  /// `expectedBytes` (e.g. the sum of partBytes over a rank's specs) or, when
  /// 0, the bytes of every tensor in the checkpoint.
  void setProgress(std::function<void(int64_t bytesDone, int64_t bytesTotal)>
                       callback,
                   int64_t expectedBytes = 0);

  /// Tensor `name` wherever it lives, or null.
  const TensorInfo *find(const std::string &name) const;
  /// Whether the checkpoint holds tensor `name`.
  bool has(const std::string &name) const { return find(name) != nullptr; }
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// Tensors in the checkpoint (for an index: the names its weight_map lists).
  size_t numTensors() const { return tensors.size(); }
  /// Safetensors files opened.
  size_t numFiles() const { return files.size(); }
  /// Bytes of every tensor in the checkpoint.
  int64_t totalBytes() const { return checkpointBytes; }

private:
  WeightLoader() = default;
  bool addFile(std::unique_ptr<SafetensorsFile> file, std::string &error);
  bool addIndex(const std::string &indexPath, std::string &error);
  bool loadImpl(const WeightSpec &spec, int64_t rank, int64_t groupSize,
                void *destination, std::string &error);
  std::string missingMessage(const std::string &name) const;

  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const TensorInfo *> tensors;
  int64_t checkpointBytes = 0;
  std::function<void(int64_t, int64_t)> progress;
  int64_t progressTotal = 0;
  int64_t progressDone = 0;
};

} // namespace moert

#endif // MOEC_RUNTIME_SAFETENSORS_H
