//===- Safetensors.cpp - Hugging Face safetensors weight loading ----------===//

#include "runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace moert;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// Indexed by DType.
struct DTypeEntry {
  DType dtype;
  const char *name;
  int64_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::BF16, "BF16", 2}, {DType::F16, "F16", 2},
    {DType::F32, "F32", 4},   {DType::F8E4M3, "F8_E4M3", 1},
    {DType::I32, "I32", 4},   {DType::I64, "I64", 8},
};

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string plural(size_t count, const char *noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

/// A non-negative JSON integer that fits int64_t.
bool getCount(const json &value, int64_t &out) {
  if (!value.is_number_unsigned())
    return false;
  uint64_t raw = value.get<uint64_t>();
  out = static_cast<int64_t>(raw);
  return raw <= static_cast<uint64_t>(INT64_MAX);
}

/// Levenshtein distance of `a` and `b`; names whose lengths differ by more
/// than `limit` are not compared and get limit + 1.
size_t editDistance(const std::string &a, const std::string &b, size_t limit) {
  if (std::max(a.size(), b.size()) - std::min(a.size(), b.size()) > limit)
    return limit + 1;
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 0; i < a.size(); ++i, std::swap(prev, cur)) {
    cur[0] = i + 1;
    for (size_t j = 0; j < b.size(); ++j)
      cur[j + 1] = std::min(
          {prev[j + 1] + 1, cur[j] + 1, prev[j] + (a[i] == b[j] ? 0 : 1)});
  }
  return prev[b.size()];
}

/// The shard of `spec` with empty splits/chunks filled in with ones. Returns
/// false with a reason (when `why` is set) if it does not fit the shape.
bool planShard(const WeightSpec &spec, std::vector<int64_t> &splits,
               std::vector<int64_t> &chunks, int64_t &parts, std::string *why) {
  const std::vector<int64_t> &shape = spec.fullShape;
  size_t rank = shape.size();
  auto fail = [&](const std::string &message) {
    if (why)
      *why = "weight '" + spec.name + "': " + message;
    return false;
  };
  // Assigned in place, not from a conditional's temporary vector, of which
  // g++ 12 wrongly warns that it frees a non-heap pointer.
  for (auto [list, given] : {std::pair{&splits, &spec.splits},
                             std::pair{&chunks, &spec.chunks}}) {
    if (given->empty())
      list->assign(rank, 1);
    else
      *list = *given;
  }
  for (const auto *list : {&splits, &chunks}) {
    const char *what = list == &splits ? "splits " : "chunks ";
    if (list->size() != rank)
      return fail(what + formatShape(*list) + " give " +
                  plural(list->size(), "dimension") + " but the tensor has " +
                  std::to_string(rank));
    for (int64_t count : *list)
      if (count < 1)
        return fail(what + formatShape(*list) + " must all be positive");
  }
  parts = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (shape[i] < 0)
      return fail("shape " + formatShape(shape) + " has a negative dimension");
    int64_t cut = 0;
    if (__builtin_mul_overflow(splits[i], chunks[i], &cut) ||
        shape[i] % cut != 0) {
      std::string dim = "dimension " + std::to_string(i) + " of size " +
                        std::to_string(shape[i]);
      if (chunks[i] == 1)
        return fail(dim + " does not split into " + std::to_string(splits[i]) +
                    " equal parts");
      return fail(dim + " does not split into " + std::to_string(chunks[i]) +
                  " chunks of " + std::to_string(splits[i]) + " equal parts");
    }
    if (__builtin_mul_overflow(parts, splits[i], &parts))
      return fail("splits " + formatShape(splits) + " make too many parts");
  }
  return true;
}

} // namespace

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

int64_t moert::dtypeSize(DType dtype) {
  return kDTypes[static_cast<int>(dtype)].size;
}

const char *moert::dtypeName(DType dtype) {
  return kDTypes[static_cast<int>(dtype)].name;
}

bool moert::parseDType(const std::string &name, DType &dtype) {
  for (const DTypeEntry &entry : kDTypes)
    if (name == entry.name) {
      dtype = entry.dtype;
      return true;
    }
  return false;
}

//===----------------------------------------------------------------------===//
// SafetensorsFile
//===----------------------------------------------------------------------===//

namespace {

template <typename Map> std::vector<std::string> keysOf(const Map &map) {
  std::vector<std::string> keys;
  keys.reserve(map.size());
  for (const auto &entry : map)
    keys.push_back(entry.first);
  return keys;
}

/// Fills `tensor` from one header entry; returns why it is invalid, or "".
std::string parseEntry(const json &entry, const uint8_t *data,
                       int64_t dataBytes, TensorInfo &tensor) {
  if (!entry.is_object())
    return std::string("entry is a JSON ") + entry.type_name() +
           ", expected an object with dtype, shape and data_offsets";
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string())
    return "no \"dtype\" string";
  if (!parseDType(dtype->get<std::string>(), tensor.dtype))
    return "unsupported dtype '" + dtype->get<std::string>() +
           "' (supported: BF16, F16, F32, F8_E4M3, I32, I64)";
  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array())
    return "no \"shape\" list";
  int64_t numBytes = dtypeSize(tensor.dtype);
  for (const json &dim : *shape) {
    int64_t extent = 0;
    if (!getCount(dim, extent))
      return "shape " + shape->dump() +
             " is not a list of non-negative integers";
    tensor.shape.push_back(extent);
    if (__builtin_mul_overflow(numBytes, extent, &numBytes))
      return "shape " + shape->dump() + " is too large";
  }
  auto offsets = entry.find("data_offsets");
  int64_t begin = 0, end = 0;
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !getCount((*offsets)[0], begin) || !getCount((*offsets)[1], end) ||
      begin > end)
    return "data_offsets " +
           (offsets == entry.end() ? "missing" : offsets->dump()) +
           " are not [begin, end] with 0 <= begin <= end";
  std::string range =
      "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
  if (end - begin != numBytes)
    return "data_offsets " + range + " hold " + plural(end - begin, "byte") +
           " but shape " + formatShape(tensor.shape) + " of " +
           dtypeName(tensor.dtype) + " needs " + std::to_string(numBytes);
  if (end > dataBytes)
    return "data_offsets " + range + " run past the end of the data section (" +
           plural(dataBytes, "byte") + ")";
  tensor.data = data + begin;
  tensor.numBytes = numBytes;
  return "";
}

} // namespace

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string &path,
                                                       std::string &error) {
  int fd = -1;
  auto fail = [&](const std::string &message) {
    error = path + ": " + message;
    if (fd >= 0)
      ::close(fd);
    return nullptr;
  };
  try {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return fail(std::string("cannot open: ") + std::strerror(errno));
    struct stat info;
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode))
      return fail("not a regular file");
    size_t size = static_cast<size_t>(info.st_size);
    if (size < 8)
      return fail("file is " + plural(size, "byte") +
                  ", too short for the 8-byte header length");
    void *mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED)
      return fail(std::string("cannot map: ") + std::strerror(errno));
    ::close(fd);
    fd = -1;
    std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
    file->filePath = path;
    file->mapping = mapping;
    file->mappingSize = size;
    if (!file->parseHeader(error))
      return nullptr;
    return file;
  } catch (const std::exception &e) {
    return fail(e.what());
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping)
    ::munmap(mapping, mappingSize);
}

bool SafetensorsFile::parseHeader(std::string &error) {
  auto fail = [&](const std::string &message) {
    error = filePath + ": " + message;
    return false;
  };
  const uint8_t *bytes = static_cast<const uint8_t *>(mapping);
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i)
    headerLength = (headerLength << 8) | bytes[i];
  if (headerLength > mappingSize - 8)
    return fail("header length " + std::to_string(headerLength) +
                " runs past the end of the file (" +
                plural(mappingSize, "byte") + ")");
  const char *text = reinterpret_cast<const char *>(bytes + 8);
  json header;
  try {
    header = json::parse(text, text + headerLength);
  } catch (const json::exception &e) {
    std::string what = e.what(); // "[json.exception.parse_error.101] ..."
    size_t bracket = what.find("] ");
    if (what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos)
      what = what.substr(bracket + 2);
    return fail("header is not valid JSON: " + what);
  }
  if (!header.is_object())
    return fail(std::string("header is a JSON ") + header.type_name() +
                ", expected an object of tensors");
  const uint8_t *data = bytes + 8 + headerLength;
  int64_t dataBytes = static_cast<int64_t>(mappingSize - 8 - headerLength);
  for (const auto &item : header.items()) {
    if (item.key() == "__metadata__")
      continue;
    TensorInfo tensor;
    tensor.name = item.key();
    std::string why = parseEntry(item.value(), data, dataBytes, tensor);
    if (!why.empty())
      return fail("tensor '" + item.key() + "': " + why);
    tensors[item.key()] = std::move(tensor);
  }
  return true;
}

std::vector<std::string> SafetensorsFile::names() const {
  return keysOf(tensors);
}

const TensorInfo *SafetensorsFile::find(const std::string &name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

//===----------------------------------------------------------------------===//
// WeightLoader
//===----------------------------------------------------------------------===//

bool WeightLoader::addFile(std::unique_ptr<SafetensorsFile> file,
                           std::string &error) {
  for (const std::string &name : file->names()) {
    if (tensors.count(name)) {
      for (const auto &other : files)
        if (other->has(name))
          error = file->path() + ": tensor '" + name + "' is also in " +
                  other->path();
      return false;
    }
    tensors[name] = file->find(name);
  }
  files.push_back(std::move(file));
  return true;
}

bool WeightLoader::addIndex(const std::string &indexPath, std::string &error) {
  auto fail = [&](const std::string &message) {
    error = indexPath + ": " + message;
    return false;
  };
  std::ifstream stream(indexPath, std::ios::binary);
  if (!stream)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  std::stringstream buffer;
  buffer << stream.rdbuf();
  json index = json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded())
    return fail("not valid JSON");
  auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (map == index.end() || !map->is_object())
    return fail("no \"weight_map\" object (expected a Hugging Face "
                "model.safetensors.index.json)");
  std::map<std::string, const SafetensorsFile *> shards;
  for (const auto &item : map->items()) {
    if (!item.value().is_string())
      return fail("weight_map entry '" + item.key() + "' is not a file name");
    shards[item.value().get<std::string>()] = nullptr;
  }
  fs::path folder = fs::path(indexPath).parent_path();
  for (auto &shard : shards) {
    auto file = SafetensorsFile::open((folder / shard.first).string(), error);
    if (!file)
      return false;
    shard.second = file.get();
    files.push_back(std::move(file));
  }
  for (const auto &item : map->items()) {
    std::string shard = item.value().get<std::string>();
    const TensorInfo *tensor = shards[shard]->find(item.key());
    if (!tensor)
      return fail("weight_map puts '" + item.key() + "' in " + shard +
                  ", which has no such tensor");
    tensors[item.key()] = tensor;
  }
  return true;
}

std::unique_ptr<WeightLoader> WeightLoader::open(const std::string &path,
                                                 std::string &error) {
  try {
    std::unique_ptr<WeightLoader> loader(new WeightLoader());
    std::error_code ec;
    fs::path index = fs::path(path) / "model.safetensors.index.json";
    bool isFolder = fs::is_directory(path, ec);
    std::vector<std::string> found; // .safetensors files, when no index
    if (isFolder && !fs::is_regular_file(index, ec)) {
      for (fs::directory_iterator it(path, ec), end; !ec && it != end;
           it.increment(ec))
        if (it->path().extension() == ".safetensors")
          found.push_back(it->path().string());
      if (ec || found.empty()) {
        error = path + (ec ? ": cannot list the folder: " + ec.message()
                           : ": the folder holds neither model.safetensors."
                             "index.json nor a .safetensors file");
        return nullptr;
      }
      std::sort(found.begin(), found.end());
    } else if (!isFolder && fs::path(path).extension() != ".json") {
      found.push_back(path);
    } else if (!loader->addIndex(isFolder ? index.string() : path, error)) {
      return nullptr;
    }
    for (const std::string &filePath : found) {
      auto file = SafetensorsFile::open(filePath, error);
      if (!file || !loader->addFile(std::move(file), error))
        return nullptr;
    }
    for (const auto &entry : loader->tensors)
      loader->checkpointBytes += entry.second->numBytes;
    return loader;
  } catch (const std::exception &e) {
    error = path + ": " + e.what();
    return nullptr;
  }
}

const TensorInfo *WeightLoader::find(const std::string &name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : it->second;
}

std::vector<std::string> WeightLoader::names() const { return keysOf(tensors); }

void WeightLoader::setProgress(
    std::function<void(int64_t bytesDone, int64_t bytesTotal)> callback,
    int64_t expectedBytes) {
  progress = std::move(callback);
  progressTotal = expectedBytes;
  progressDone = 0;
}

std::string WeightLoader::missingMessage(const std::string &name) const {
  std::string message = "weight '" + name + "' is not in the checkpoint (" +
                        plural(tensors.size(), "tensor") + " in " +
                        plural(files.size(), "file") + ")";
  constexpr size_t kLimit = 3;
  size_t best = kLimit + 1;
  const std::string *suggestion = nullptr;
  for (const auto &entry : tensors) { // sorted: ties go to the first name
    size_t distance = editDistance(name, entry.first, kLimit);
    if (distance < best) {
      best = distance;
      suggestion = &entry.first;
    }
  }
  if (suggestion)
    message += "; did you mean '" + *suggestion + "'?";
  return message;
}

int64_t WeightLoader::partBytes(const WeightSpec &spec) {
  std::vector<int64_t> splits, chunks;
  int64_t parts = 0;
  if (!planShard(spec, splits, chunks, parts, nullptr))
    return -1;
  int64_t bytes = dtypeSize(spec.dtype);
  for (size_t i = 0; i < spec.fullShape.size(); ++i)
    if (__builtin_mul_overflow(bytes, spec.fullShape[i] / splits[i], &bytes))
      return -1;
  return bytes;
}

bool WeightLoader::load(const WeightSpec &spec, int64_t rank, int64_t groupSize,
                        void *destination, std::string &error) {
  try {
    return loadImpl(spec, rank, groupSize, destination, error);
  } catch (const std::exception &e) {
    error = "weight '" + spec.name + "': " + e.what();
  } catch (...) {
    error = "weight '" + spec.name + "': unknown failure";
  }
  return false;
}

bool moert::copyShard(const WeightSpec &spec, const void *full, int64_t rank,
                      int64_t groupSize, void *destination,
                      std::string &error) {
  auto fail = [&](const std::string &message) {
    error = "weight '" + spec.name + "': " + message;
    return false;
  };
  std::vector<int64_t> splits, chunks;
  int64_t parts = 0;
  if (!planShard(spec, splits, chunks, parts, &error))
    return false;
  if (groupSize < 1)
    return fail("group size " + std::to_string(groupSize) +
                " must be positive");
  if (groupSize % parts != 0)
    return fail("a group of " + plural(groupSize, "rank") + " cannot share " +
                plural(parts, "part") +
                " evenly (the group size must be a multiple of " +
                std::to_string(parts) + ")");
  if (rank < 0 || rank >= groupSize)
    return fail("rank " + std::to_string(rank) + " is outside the group of " +
                plural(groupSize, "rank") + " (0.." +
                std::to_string(groupSize - 1) + ")");
  if (!destination)
    return fail("no destination buffer");

  int64_t total = WeightLoader::partBytes(spec);
  uint8_t *out = static_cast<uint8_t *>(destination);
  const uint8_t *data = static_cast<const uint8_t *>(full);
  const std::vector<int64_t> &shape = spec.fullShape;
  size_t dims = shape.size();
  // This rank's part index along each dimension (row-major over splits).
  std::vector<int64_t> part(dims, 0);
  int64_t linear = rank / (groupSize / parts);
  for (size_t i = dims; i-- > 0; linear /= splits[i])
    part[i] = linear % splits[i];
  // Innermost cut dimension: everything inside it is copied in whole runs.
  size_t cut = dims;
  for (size_t i = 0; i < dims; ++i)
    if (splits[i] > 1)
      cut = i;
  if (total > 0 && cut == dims) {
    std::memcpy(out, data, static_cast<size_t>(total));
  } else if (total > 0) {
    std::vector<int64_t> stride(dims), chunkSize(dims), piece(dims);
    for (size_t i = dims; i-- > 0;) {
      stride[i] =
          i + 1 == dims ? dtypeSize(spec.dtype) : stride[i + 1] * shape[i + 1];
      chunkSize[i] = shape[i] / chunks[i];
      piece[i] = chunkSize[i] / splits[i];
    }
    // Odometer over the local index of every dimension before `cut`, then
    // the chunk of `cut`; each step copies one run of piece[cut] rows.
    std::vector<int64_t> index(cut + 1, 0), extent(cut + 1);
    for (size_t i = 0; i < cut; ++i)
      extent[i] = shape[i] / splits[i];
    extent[cut] = chunks[cut];
    int64_t runBytes = piece[cut] * stride[cut];
    for (int64_t run = 0, runs = total / runBytes; run < runs; ++run) {
      int64_t offset =
          (index[cut] * chunkSize[cut] + part[cut] * piece[cut]) * stride[cut];
      for (size_t i = 0; i < cut; ++i)
        offset += (index[i] / piece[i] * chunkSize[i] + part[i] * piece[i] +
                   index[i] % piece[i]) *
                  stride[i];
      std::memcpy(out, data + offset, static_cast<size_t>(runBytes));
      out += runBytes;
      for (size_t d = cut + 1; d-- > 0 && ++index[d] == extent[d];)
        index[d] = 0;
    }
  }
  return true;
}

bool WeightLoader::loadImpl(const WeightSpec &spec, int64_t rank,
                            int64_t groupSize, void *destination,
                            std::string &error) {
  const TensorInfo *tensor = find(spec.name);
  if (!tensor) {
    error = missingMessage(spec.name);
    return false;
  }
  auto fail = [&](const std::string &message) {
    error = "weight '" + spec.name + "': " + message;
    return false;
  };
  if (tensor->dtype != spec.dtype)
    return fail(std::string("checkpoint has ") + dtypeName(tensor->dtype) +
                ", the model expects " + dtypeName(spec.dtype));
  if (tensor->shape != spec.fullShape)
    return fail("checkpoint shape " + formatShape(tensor->shape) +
                " but the model expects " + formatShape(spec.fullShape));
  if (!copyShard(spec, tensor->data, rank, groupSize, destination, error))
    return false;
  int64_t total = partBytes(spec);
  progressDone += total;
  if (progress)
    progress(progressDone, progressTotal > 0 ? progressTotal : checkpointBytes);
  return true;
}
