//===- Bench.cpp - moe-run ARTIFACT bench ---------------------------------===//
//
// A synthetic serving benchmark: the entry point, benchCommand.
//
// The command parses its options and generates its workload
// (BenchWorkload.cpp), runs it with continuous or static batching
// (BenchRuns.cpp), and reports the run (BenchReport.cpp, BenchPlot.cpp);
// the declarations they share are in BenchInternal.h. This file opens the
// artifact and the output files, builds the runners and warms them up.
//
// The model runs as runtime/LocalRunner.h (every rank of a partitioned plan
// in this process), with random weights (--weights-seed) or a checkpoint,
// after one untimed warm-up step.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Bench.h"
#include "tools/moe-run/BenchInternal.h"

#include "runtime/Artifact.h"
#include "runtime/LocalRunner.h"
#include "runtime/Sampler.h"
#include "tools/moe-run/MpiJob.h"
#include "tools/moe-run/WeightLoad.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using namespace moert;
using namespace moert::bench;

namespace {

//===----------------------------------------------------------------------===//
// The command
//===----------------------------------------------------------------------===//

/// One untimed forward step of `tokens` one-token sequences before the
/// clock starts: the first step pays for thread pools and first touches of
/// the activation buffers (10-30 ms on the host), which would otherwise be
/// charged to the first requests. It writes nothing to the cache (slots -1).
void warmUp(ModelRunner &runner, int64_t tokens) {
  StepInputs inputs;
  inputs.sequences = tokens;
  inputs.blocksPerSeq = 1;
  inputs.blockTables.assign(static_cast<size_t>(tokens), 0);
  for (int64_t i = 0; i < tokens; ++i) {
    inputs.tokens.push_back(0);
    inputs.positions.push_back(0);
    inputs.slotMapping.push_back(-1);
    inputs.tokenSeq.push_back(static_cast<int32_t>(i));
    inputs.logitRows.push_back(static_cast<int32_t>(i));
  }
  std::vector<float> logits;
  std::string error;
  if (!runner.forward(inputs, logits, error))
    throw BenchError{"warm-up step failed: " + error};
}

std::ofstream openOutput(const std::string &path) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file)
    throw BenchError{"cannot write '" + path + "': " + std::strerror(errno)};
  return file;
}

void writeOutput(std::ofstream &file, const std::string &path,
                 const std::string &text) {
  file << text;
  file.close();
  if (!file)
    throw BenchError{"cannot write '" + path + "'"};
}

int runBench(const std::string &path, const std::vector<std::string> &args) {
  BenchOptions o = parseOptions(args);

  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  if (!artifact)
    throw BenchError{error};
  RunInfo info;
  info.artifactPath = path;
  info.modelName = artifact->model().name;
  info.target = artifact->target();
  info.vocab = artifact->model().vocabSize;
  info.maxContext = artifact->model().maxContext;
  info.plan = artifact->plan();
  std::string invalid = validate(o.sampling, info.vocab);
  if (!invalid.empty())
    usageError(invalid);

  const StageInfo &stage = artifact->stageOfRank(0);
  int64_t blockSize = stage.execution && stage.execution->blockSize > 0
                          ? stage.execution->blockSize
                          : 1;
  if (o.kvBlocks == 0) {
    // Enough for a full batch of the longest requests the workload can
    // draw: no preemption unless asked for with a smaller --kv-blocks.
    int64_t longest = std::min(o.promptLength.max + o.outputLength.max - 1,
                               std::max<int64_t>(info.maxContext, 1));
    int64_t width = o.mode == Mode::Static ? o.batch : o.maxRunning;
    int64_t perSequence = blocksFor(longest, blockSize);
    o.kvBlocks = std::min<int64_t>(
        perSequence * std::min<int64_t>(width, o.requests), INT32_MAX);
  }

  // Under mpirun: one process per rank; rank 0 runs the benchmark and
  // drives the others, which only follow its steps.
  std::unique_ptr<MpiJob> job;
  if (MpiCommunicator::launchedByMpi()) {
    job = std::make_unique<MpiJob>(
        path, MpiJob::Options{o.checkpoint, o.weightsSeed, o.kvBlocks,
                              o.commTimeout, o.collectives});
    if (!job->isHead())
      return job->follow();
  }

  // Open the outputs first: a bad path fails before the run, not after.
  std::ofstream jsonFile, plotFile;
  if (!o.jsonPath.empty())
    jsonFile = openOutput(o.jsonPath);
  if (!o.plotPath.empty())
    plotFile = openOutput(o.plotPath);

  // Every rank of the plan, in this process (runtime/LocalRunner.h), or
  // the MPI job's ranks.
  std::unique_ptr<LocalRunner> local;
  ModelRunner *executor = job ? &job->runner() : nullptr;
  if (!job) {
    local = LocalRunner::create(*artifact, o.kvBlocks, error);
    if (!local)
      throw BenchError{error};
    if (!fillWeights(*local, o.checkpoint, o.weightsSeed, "", error))
      throw BenchError{error};
    executor = local.get();
  }
  info.numBlocks = executor->numBlocks();
  info.blockSize = executor->blockSize();

  // The draft model of speculative decoding, with as many blocks.
  std::unique_ptr<Artifact> draftArtifact;
  std::unique_ptr<LocalRunner> draft;
  if (!o.draft.empty()) {
    draftArtifact = Artifact::open(o.draft, error);
    if (!draftArtifact)
      throw BenchError{error};
    if (draftArtifact->model().vocabSize != info.vocab)
      throw BenchError{"the draft's vocabulary (" +
                       std::to_string(draftArtifact->model().vocabSize) +
                       ") is not the target's (" + std::to_string(info.vocab) +
                       ")"};
    draft = LocalRunner::create(*draftArtifact, executor->numBlocks(), error);
    if (!draft)
      throw BenchError{"draft: " + error};
    if (!fillWeights(*draft, o.draftCheckpoint, o.draftWeightsSeed, "draft",
                     error))
      throw BenchError{"draft: " + error};
    info.maxContext =
        std::min(info.maxContext, draftArtifact->model().maxContext);
  }

  warmUp(*executor, std::min<int64_t>(o.maxTokensPerStep, 4096));
  if (draft)
    warmUp(*draft, std::min<int64_t>(o.maxTokensPerStep, 4096));
  // The ranks' bytes count from here: the warm-up is a decode-shaped step.
  std::vector<DecodeTraffic> trafficBefore;
  if (!executor->decodeTraffic(trafficBefore, error))
    throw BenchError{error};
  std::vector<WorkItem> work = makeWorkload(o, info.vocab);
  RunResult result;
  if (o.mode == Mode::Static)
    runStatic(*executor, work, o, info.maxContext, result);
  else
    runContinuous(*executor, draft.get(), work, o, info.maxContext, result);
  if (!executor->decodeTraffic(result.traffic, error))
    throw BenchError{error};
  for (size_t rank = 0;
       rank < result.traffic.size() && rank < trafficBefore.size(); ++rank)
    result.traffic[rank] = result.traffic[rank].since(trafficBefore[rank]);
  info.ranks = job ? std::to_string(job->communicator().size()) + " ranks (" +
                         job->transport() + ")"
                   : std::to_string(info.plan.ranks) + " ranks in this process";

  Summary summary = summarize(work, result, info.numBlocks);
  printReport(o, info, result, summary);
  if (!o.jsonPath.empty())
    writeOutput(jsonFile, o.jsonPath,
                formatJson(toJson(o, info, work, result, summary)));
  if (!o.plotPath.empty())
    writeOutput(plotFile, o.plotPath, plotSvg(o, info, result, summary));
  return job ? job->finish() : 0;
}

} // namespace

int benchCommand(const std::string &artifactPath,
                 const std::vector<std::string> &args) {
  try {
    return runBench(artifactPath, args);
  } catch (const BenchError &failure) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe-run: error: %s\n", failure.message.c_str());
    return failure.status;
  }
}
