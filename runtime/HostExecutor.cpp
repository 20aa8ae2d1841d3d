//===- HostExecutor.cpp - Running an artifact's plan on the CPU -----------===//

#include "runtime/HostExecutor.h"
#include "runtime/ExpertRuns.h"
#include "runtime/StepShapes.h"
#include "runtime/TransferStep.h"
#include "runtime/WeightInit.h"

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

std::string RankExecutor::checkRequest(const Artifact &artifact,
                                      const std::string &target, int64_t rank,
                                      int64_t numBlocks,
                                      const Communicator *communicator) {
  std::string launch = artifact.checkLaunch(
      target, rank, communicator ? communicator->size() : 1);
  if (!launch.empty())
    return launch;
  if (communicator && communicator->rank() != rank)
    return "the communicator is rank " + std::to_string(communicator->rank()) +
           "'s, not rank " + std::to_string(rank) + "'s";
  const StageInfo &stage = artifact.stageOfRank(rank);
  if (!stage.execution)
    return "the artifact has no " + target +
           " execution plan (compile it with moec --target=" + target +
           " --emit=artifact)";
  if (target == "host" && artifact.hostObject().empty())
    return "the artifact has no host kernels (compile it with moec "
           "--target=host --emit=artifact)";
  if (target == "cuda" && artifact.cudaModules().empty())
    return "the artifact has no GPU kernels (moec found no CUDA toolkit "
           "when it compiled it; see its warning)";
  if (numBlocks < 1)
    return "the KV cache needs at least one block, got " +
           std::to_string(numBlocks);
  return "";
}

std::unique_ptr<HostExecutor>
HostExecutor::create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
                     std::string &error, Communicator *communicator) {
  error = checkRequest(artifact, "host", rank, numBlocks, communicator);
  if (!error.empty())
    return nullptr;
  const StageInfo &stage = artifact.stageOfRank(rank);
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
  executor->slots = BufferSlots::of(plan);
  executor->storage.resize(plan.buffers.size() + executor->slots.count);
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
  std::vector<float> full;
  for (const WeightSpec &spec : specs)
    randomWeightShard(spec, seed, rankInStage, groupSize, full,
                      weights[spec.name].data());
}

bool HostExecutor::loadWeights(
    const std::string &checkpoint, std::string &error,
    const std::function<void(int64_t, int64_t)> &progress) {
  return loadWeightShards(
      checkpoint, specs, rankInStage, groupSize, error,
      [&](const WeightSpec &spec, const std::vector<float> &values) {
        weights[spec.name] = values;
      },
      progress);
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
  logits.clear();
  return run(in, plan.steps.size(), false, error,
             [&](const std::vector<char *> &data,
                 const std::vector<std::vector<int64_t>> &) {
               if (plan.logits < 0)
                 return;
               const float *out =
                   reinterpret_cast<const float *>(data[plan.logits]);
               logits.assign(out, out + in.logitRows.size() * vocab);
             });
}

bool HostExecutor::copyBlocks(const std::vector<BlockCopy> &copies,
                              std::string &error) {
  error = checkBlockCopies(copies, blocks);
  if (!error.empty())
    return false;
  // A cache is [slots, kvWidth], slot = block * blockSize + offset: a block
  // is one contiguous run of blockSize * kvWidth elements.
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    BufferInfo::Kind kind = plan.buffers[id].kind;
    if (kind != BufferInfo::Kind::KCache && kind != BufferInfo::Kind::VCache)
      continue;
    size_t blockBytes = storage[id].size() / blocks;
    char *cache = storage[id].data();
    for (const BlockCopy &copy : copies)
      std::memcpy(cache + copy.destination * blockBytes,
                  cache + copy.source * blockBytes, blockBytes);
  }
  return true;
}

bool HostExecutor::runPrefix(const StepInputs &in, size_t steps,
                             int64_t buffer, std::vector<float> &out,
                             std::string &error) {
  error = checkPrefix(plan, steps, buffer, comm != nullptr);
  if (!error.empty())
    return false;
  return run(in, steps, true, error,
             [&](const std::vector<char *> &data,
                 const std::vector<std::vector<int64_t>> &sizes) {
               size_t elements = elementCount(sizes[buffer]);
               if (plan.buffers[buffer].dtype == DType::I32) {
                 auto *values =
                     reinterpret_cast<const int32_t *>(data[buffer]);
                 out.assign(values, values + elements);
               } else {
                 auto *values = reinterpret_cast<const float *>(data[buffer]);
                 out.assign(values, values + elements);
               }
             });
}

bool HostExecutor::run(
    const StepInputs &in, size_t steps, bool poison, std::string &error,
    const std::function<void(const std::vector<char *> &,
                             const std::vector<std::vector<int64_t>> &)>
        &finish) {
  error = checkInputs(in);
  if (!error.empty())
    return false;
  std::vector<std::vector<int64_t>> sizes =
      StepSizes::of(in, blocks * plan.blockSize).shapes(plan);
  std::vector<char *> data(plan.buffers.size());
  // Every storage entry sized first (runtime/BufferSlots.h), then
  // addressed: resizing moves it.
  std::vector<size_t> bytes = slots.storageBytes(plan, sizes, poison);
  for (size_t at = 0; at < storage.size(); ++at)
    if (bytes[at] > storage[at].size())
      storage[at].resize(bytes[at]);
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    const BufferInfo &buffer = plan.buffers[id];
    if (buffer.kind == BufferInfo::Kind::Weight) {
      data[id] = reinterpret_cast<char *>(weights[buffer.name].data());
      continue;
    }
    if (poison && buffer.kind == BufferInfo::Kind::Activation)
      std::memset(storage[id].data(), 0xff, storage[id].size()); // NaN
    data[id] = storage[slots.storageOf(id, poison)].data();
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

  std::vector<std::vector<int64_t>> descriptors;
  for (size_t id = 0; id < plan.buffers.size(); ++id)
    descriptors.push_back(memrefDescriptor(data[id], sizes[id]));
  std::vector<void *> args;
  bytesWithinStage = bytesToNextStage = 0;
  StepScale scale = scaleOf(in);
  for (size_t index = 0; index < steps; ++index) {
    const StepInfo &step = plan.steps[index];
    if (!step.runsAt(scale))
      continue;
    if (step.kind == StepInfo::Kind::Kernel) {
      args.clear();
      for (int64_t id : step.args)
        args.push_back(descriptors[id].data());
      entries[step.kernel](args.data());
    } else if (!runStep(step, data, sizes, error)) {
      return false;
    }
  }
  finish(data, sizes);
  return true;
}

bool HostExecutor::runStep(const StepInfo &step, std::vector<char *> &data,
                           std::vector<std::vector<int64_t>> &sizes,
                           std::string &error) {
  if (step.kind == StepInfo::Kind::Gemm) {
    const std::vector<int64_t> &a = sizes[step.a], &b = sizes[step.b];
    gemm(reinterpret_cast<float *>(data[step.a]),
         reinterpret_cast<float *>(data[step.b]),
         reinterpret_cast<float *>(data[step.c]), a[0], b[0], a[1]);
    return true;
  }
  if (step.kind == StepInfo::Kind::GroupedGemm) {
    // b [experts, n, k]: one GEMM per run of rows of an expert held.
    int64_t rows = sizes[step.a][0], n = sizes[step.b][1],
            k = sizes[step.b][2];
    std::vector<ExpertRun> runs;
    bool covered = false;
    if (!expertRuns(plan, step, sizes, rankInStage,
                    reinterpret_cast<const int32_t *>(data[step.offsets]), runs,
                    covered, error))
      return false;
    const float *a = reinterpret_cast<const float *>(data[step.a]);
    const float *weights = reinterpret_cast<const float *>(data[step.b]);
    float *c = reinterpret_cast<float *>(data[step.c]);
    if (!covered)
      std::memset(c, 0, rows * n * sizeof(float));
    for (const ExpertRun &run : runs)
      gemm(a + run.firstRow * k, weights + run.local * n * k,
           c + run.firstRow * n, run.rows, n, k);
    return true;
  }
  RankPlace place{comm, group, rankInStage};
  TransferBuffers buffers;
  if (step.a >= 0) {
    buffers.a = reinterpret_cast<const float *>(data[step.a]);
    buffers.shapeA = sizes[step.a];
  }
  if (step.c >= 0) {
    buffers.c = reinterpret_cast<float *>(data[step.c]);
    buffers.shapeC = sizes[step.c];
  }
  if (step.kind == StepInfo::Kind::ExpertExchange) {
    buffers.offsets = reinterpret_cast<const int32_t *>(data[step.offsets]);
    buffers.experts = sizes[step.offsets][0] - 1;
    buffers.permutation =
        reinterpret_cast<const int32_t *>(data[step.permutation]);
  }
  return runTransferStep(step, place, buffers, 4, bytesWithinStage,
                         bytesToNextStage, error);
}
