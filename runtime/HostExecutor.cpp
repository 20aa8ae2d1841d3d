//===- HostExecutor.cpp - Running an artifact's plan on the CPU -----------===//

#include "runtime/HostExecutor.h"

#include <cmath>
#include <cstring>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef MOEC_HAVE_OPENBLAS
#include <cblas.h>
#endif

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

/// c [m, n] = a [m, k] * b [n, k]^T, f32.
void gemm(const float *a, const float *b, float *c, int64_t m, int64_t n,
          int64_t k) {
#ifdef MOEC_HAVE_OPENBLAS
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b,
              k, 0.0f, c, n);
#else
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float sum = 0;
      for (int64_t l = 0; l < k; ++l)
        sum += a[i * k + l] * b[j * k + l];
      c[i * n + j] = sum;
    }
#endif
}
} // namespace

HostExecutor::~HostExecutor() {
  if (library)
    dlclose(library);
  if (memfd >= 0)
    close(memfd);
}

std::unique_ptr<HostExecutor>
HostExecutor::create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
                     std::string &error, Communicator *communicator) {
  std::string launch = artifact.checkLaunch(
      "host", rank, communicator ? communicator->size() : 1);
  if (!launch.empty()) {
    error = launch;
    return nullptr;
  }
  if (communicator && communicator->rank() != rank) {
    error = "the communicator is rank " + std::to_string(communicator->rank()) +
            "'s, not rank " + std::to_string(rank) + "'s";
    return nullptr;
  }
  const StageInfo &stage = artifact.stageOfRank(rank);
  if (!stage.execution || artifact.hostObject().empty()) {
    error = "the artifact has no host execution plan (compile it with "
            "moec --target=host --emit=artifact)";
    return nullptr;
  }
  if (numBlocks < 1) {
    error = "the KV cache needs at least one block, got " +
            std::to_string(numBlocks);
    return nullptr;
  }
  std::unique_ptr<HostExecutor> executor(new HostExecutor());
  executor->plan = *stage.execution;
  executor->blocks = numBlocks;
  executor->vocab = artifact.model().vocabSize;
  const ExecutionInfo &plan = executor->plan;
  for (const BufferInfo &buffer : plan.buffers)
    if (buffer.dtype != DType::F32 && buffer.dtype != DType::I32) {
      error = std::string("the host runtime runs f32 plans; this one has a ") +
              artifactDTypeName(buffer.dtype) +
              " buffer (compile it without --dtype: f32 is the host default)";
      return nullptr;
    }

  // dlopen needs a file: an anonymous in-memory one holds the object.
  int fd = memfd_create("moec-host-kernels", MFD_CLOEXEC);
  const std::string &object = artifact.hostObject();
  if (fd < 0 || write(fd, object.data(), object.size()) !=
                    static_cast<ssize_t>(object.size())) {
    error = std::string("cannot stage the host kernels: ") +
            std::strerror(errno);
    if (fd >= 0)
      close(fd);
    return nullptr;
  }
  executor->memfd = fd;
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  executor->library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!executor->library) {
    error = std::string("cannot load the host kernels: ") + dlerror();
    return nullptr;
  }
  for (const StepInfo &step : plan.steps) {
    if (step.kind != StepInfo::Kind::Kernel ||
        executor->entries.count(step.kernel))
      continue;
    std::string symbol = "moec_" + step.kernel;
    void *entry = dlsym(executor->library, symbol.c_str());
    if (!entry) {
      error = "the host kernels lack '" + symbol + "'";
      return nullptr;
    }
    executor->entries[step.kernel] = reinterpret_cast<void (*)(void **)>(entry);
  }

  executor->comm = communicator;
  executor->rank = rank;
  const StageInfo &own = artifact.stageOfRank(rank);
  for (int64_t r = own.firstRank; r < own.firstRank + own.ranks; ++r)
    executor->group.push_back(r);
  executor->specs = artifact.weightsForRank(rank);
  executor->rankInStage = artifact.rankInStage(rank);
  executor->groupSize = artifact.groupSize(rank);
  executor->storage.resize(plan.buffers.size());
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    const BufferInfo &buffer = plan.buffers[id];
    if (buffer.kind == BufferInfo::Kind::Weight) {
      int64_t elements = 1;
      for (const PlanDim &dim : buffer.shape)
        elements *= dim.factor;
      executor->weights[buffer.name].assign(elements, 0.0f);
    } else if (buffer.kind == BufferInfo::Kind::KCache ||
               buffer.kind == BufferInfo::Kind::VCache) {
      executor->storage[id].assign(
          numBlocks * plan.blockSize * plan.kvWidth * sizeof(float), 0);
    }
  }
  return executor;
}

void HostExecutor::initRandomWeights(uint64_t seed) {
  // Each value is drawn for the whole checkpoint tensor and this rank's part
  // cut from it, so that every partitioning sees the same model.
  std::vector<float> full;
  for (WeightSpec spec : specs) {
    std::vector<float> &values = weights[spec.name];
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
    spec.dtype = DType::F32;
    std::string error;
    // The artifact reader checked every shard against its shape.
    copyShard(spec, full.data(), rankInStage, groupSize, values.data(), error);
  }
}

/// IEEE half to float.
static float halfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1f,
           mantissa = h & 0x3ff, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else { // subnormal: renormalise
    exponent = 113;
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

bool HostExecutor::loadWeights(
    const std::string &checkpoint, std::string &error,
    const std::function<void(int64_t, int64_t)> &progress) {
  std::unique_ptr<WeightLoader> loader = WeightLoader::open(checkpoint, error);
  if (!loader)
    return false;
  int64_t total = 0, done = 0;
  for (const WeightSpec &spec : specs)
    total += WeightLoader::partBytes(spec);
  std::vector<char> scratch;
  for (WeightSpec spec : specs) {
    std::vector<float> &values = weights[spec.name];
    // The checkpoint's own element type, widened below.
    if (const TensorInfo *tensor = loader->find(spec.name)) {
      if (tensor->dtype != DType::BF16 && tensor->dtype != DType::F16 &&
          tensor->dtype != DType::F32) {
        error = "weight '" + spec.name + "' is " + dtypeName(tensor->dtype) +
                " in the checkpoint; the host runtime reads BF16, F16 and F32";
        return false;
      }
      spec.dtype = tensor->dtype;
    }
    int64_t bytes = WeightLoader::partBytes(spec);
    if (bytes < 0 ||
        bytes / dtypeSize(spec.dtype) != static_cast<int64_t>(values.size())) {
      error = "weight '" + spec.name + "': its shard does not match the plan";
      return false;
    }
    scratch.resize(bytes);
    if (!loader->load(spec, rankInStage, groupSize, scratch.data(), error))
      return false;
    for (size_t i = 0; i < values.size(); ++i) {
      if (spec.dtype == DType::F32) {
        std::memcpy(&values[i], scratch.data() + 4 * i, 4);
      } else {
        uint16_t half;
        std::memcpy(&half, scratch.data() + 2 * i, 2);
        if (spec.dtype == DType::F16) {
          values[i] = halfToFloat(half);
        } else {
          uint32_t bits = static_cast<uint32_t>(half) << 16;
          std::memcpy(&values[i], &bits, 4);
        }
      }
    }
    done += bytes;
    if (progress)
      progress(done, total);
  }
  return true;
}

const std::vector<float> *HostExecutor::weight(const std::string &name) const {
  auto it = weights.find(name);
  return it == weights.end() ? nullptr : &it->second;
}

std::string HostExecutor::checkInputs(const StepInputs &in) const {
  return checkStepInputs(in, vocab, blocks, plan.blockSize);
}

bool HostExecutor::forward(const StepInputs &in, std::vector<float> &logits,
                           std::string &error) {
  error = checkInputs(in);
  if (!error.empty())
    return false;
  auto size = [&](char symbol) -> int64_t {
    switch (symbol) {
    case 'T':
      return in.tokens.size();
    case 'R':
      return in.logitRows.size();
    case 'S':
      return blocks * plan.blockSize;
    case 'N':
      return in.sequences;
    case 'M':
      return in.blocksPerSeq;
    default:
      return 1;
    }
  };
  std::vector<std::vector<int64_t>> sizes(plan.buffers.size());
  std::vector<char *> data(plan.buffers.size());
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    const BufferInfo &buffer = plan.buffers[id];
    int64_t elements = 1;
    for (const PlanDim &dim : buffer.shape) {
      sizes[id].push_back(dim.symbol ? dim.factor * size(dim.symbol)
                                     : dim.factor);
      elements *= sizes[id].back();
    }
    if (buffer.kind == BufferInfo::Kind::Weight) {
      data[id] = reinterpret_cast<char *>(weights[buffer.name].data());
      continue;
    }
    if (buffer.kind == BufferInfo::Kind::Activation ||
        buffer.kind == BufferInfo::Kind::Input ||
        buffer.kind == BufferInfo::Kind::GroupRank)
      storage[id].resize(elements * 4);
    data[id] = storage[id].data();
    if (buffer.kind == BufferInfo::Kind::GroupRank) {
      int32_t index = static_cast<int32_t>(rankInStage / buffer.divisor);
      std::memcpy(data[id], &index, sizeof index);
    }
  }
  auto fill = [&](int64_t id, const std::vector<int32_t> &values) {
    std::memcpy(data[id], values.data(), values.size() * sizeof(int32_t));
  };
  fill(plan.tokens, in.tokens);
  fill(plan.positions, in.positions);
  fill(plan.slotMapping, in.slotMapping);
  fill(plan.tokenSeq, in.tokenSeq);
  fill(plan.blockTables, in.blockTables);
  fill(plan.logitRows, in.logitRows);

  // One memref descriptor per buffer: {allocated, aligned, offset,
  // sizes..., strides...}.
  std::vector<std::vector<int64_t>> descriptors(plan.buffers.size());
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    const std::vector<int64_t> &shape = sizes[id];
    std::vector<int64_t> &d = descriptors[id];
    d.assign(3 + 2 * shape.size(), 0);
    d[0] = d[1] = reinterpret_cast<int64_t>(data[id]);
    int64_t stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      d[3 + i] = shape[i];
      d[3 + shape.size() + i] = stride;
      stride *= shape[i];
    }
  }
  std::vector<void *> args;
  bytesWithinStage = bytesToNextStage = 0;
  for (const StepInfo &step : plan.steps) {
    if (step.kind == StepInfo::Kind::Kernel) {
      args.clear();
      for (int64_t id : step.args)
        args.push_back(descriptors[id].data());
      entries[step.kernel](args.data());
    } else if (!runStep(step, data, sizes, error)) {
      return false;
    }
  }
  logits.clear();
  if (plan.logits >= 0) {
    const float *out = reinterpret_cast<const float *>(data[plan.logits]);
    logits.assign(out, out + in.logitRows.size() * vocab);
  }
  return true;
}

bool HostExecutor::runStep(const StepInfo &step, std::vector<char *> &data,
                           std::vector<std::vector<int64_t>> &sizes,
                           std::string &error) {
  auto bytesOf = [&](int64_t id) {
    int64_t elements = 1;
    for (int64_t extent : sizes[id])
      elements *= extent;
    return elements * 4;
  };
  if (step.kind == StepInfo::Kind::Gemm) {
    const std::vector<int64_t> &a = sizes[step.a], &b = sizes[step.b];
    gemm(reinterpret_cast<float *>(data[step.a]),
         reinterpret_cast<float *>(data[step.b]),
         reinterpret_cast<float *>(data[step.c]), a[0], b[0], a[1]);
    return true;
  }
  if (!comm) {
    error = "this plan has collectives: run it with a communicator of its "
            "ranks";
    return false;
  }
  int64_t tp = static_cast<int64_t>(group.size());
  switch (step.kind) {
  case StepInfo::Kind::AllReduce:
    bytesWithinStage += 2 * bytesOf(step.c) * (tp - 1) / tp;
    std::memcpy(data[step.c], data[step.a], bytesOf(step.a));
    return comm->allReduceSum(reinterpret_cast<float *>(data[step.c]),
                              bytesOf(step.c) / 4, group, error);
  case StepInfo::Kind::AllGather: {
    // Gather whole blocks, then interleave them along `dim`: block g holds
    // this rank's [outer, inner] slab, placed at column g * inner.
    int64_t bytes = bytesOf(step.a);
    bytesWithinStage += bytesOf(step.c) * (tp - 1) / tp;
    std::vector<char> blocks(bytes * tp);
    if (!comm->allGather(data[step.a], bytes, blocks.data(), group, error))
      return false;
    int64_t outer = 1, inner = 4;
    const std::vector<int64_t> &shape = sizes[step.a];
    for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
      (d < step.dim ? outer : inner) *= shape[d];
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t g = 0; g < tp; ++g)
        std::memcpy(data[step.c] + (o * tp + g) * inner,
                    blocks.data() + g * bytes + o * inner, inner);
    return true;
  }
  // The same index of the tensor group in the other stage.
  case StepInfo::Kind::Send:
    bytesToNextStage += bytesOf(step.a);
    return comm->send(data[step.a], bytesOf(step.a),
                      step.stage * tp + rankInStage, error);
  case StepInfo::Kind::Recv:
    return comm->recv(data[step.c], bytesOf(step.c),
                      step.stage * tp + rankInStage, error);
  default:
    error = "unknown step";
    return false;
  }
}
