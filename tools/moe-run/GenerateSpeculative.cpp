//===- GenerateSpeculative.cpp - moe-run generate --draft -----------------===//

#include "tools/moe-run/GenerateSpeculative.h"

#include "runtime/LocalRunner.h"
#include "runtime/Scheduler.h"
#include "tools/moe-run/TrafficReport.h"
#include "tools/moe-run/WeightLoad.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

using namespace moert;

namespace {
int fail(const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr, "moe-run: error: %s\n", message.c_str());
  return 1;
}
} // namespace

int moert::generateSpeculative(const Artifact &artifact, ModelRunner &target,
                               const GenerateArgs &args,
                               const DraftArgs &draftArgs) {
  std::string error;
  std::unique_ptr<Artifact> draftArtifact =
      Artifact::open(draftArgs.artifact, error);
  if (!draftArtifact)
    return fail(error);
  if (draftArtifact->model().vocabSize != artifact.model().vocabSize)
    return fail("the draft's vocabulary (" +
                std::to_string(draftArtifact->model().vocabSize) +
                ") is not the target's (" +
                std::to_string(artifact.model().vocabSize) + ")");
  std::unique_ptr<LocalRunner> draft =
      LocalRunner::create(*draftArtifact, target.numBlocks(), error);
  if (!draft)
    return fail("draft: " + error);
  if (!fillWeights(*draft, draftArgs.checkpoint, draftArgs.weightsSeed, "draft",
                   error))
    return fail("draft: " + error);

  SchedulerOptions options;
  options.maxContext = std::min(artifact.model().maxContext,
                                draftArtifact->model().maxContext);
  options.draft = draft.get();
  options.draftTokens = draftArgs.tokens;
  options.adaptiveSpeculation = !draftArgs.always;
  Scheduler scheduler(target, options);
  Request request;
  request.prompt = args.prompt;
  request.maxNewTokens = args.options.maxNewTokens;
  request.sampling = args.options.sampling;
  request.stopToken = args.options.stopToken;
  if (!scheduler.submit(request, error))
    return fail(error);

  using Clock = std::chrono::steady_clock;
  Clock::time_point start = Clock::now(), last = start;
  double firstToken = 0;
  std::vector<double> perToken;
  int64_t produced = 0;
  std::vector<SchedulerEvent> events;
  while (!scheduler.idle()) {
    events.clear();
    if (!scheduler.step(events, error))
      return fail(error);
    int64_t tokens = 0;
    for (const SchedulerEvent &event : events) {
      if (event.kind != SchedulerEvent::Kind::Token)
        continue;
      std::printf(produced + tokens ? " %d" : "%d", event.token);
      ++tokens;
    }
    std::fflush(stdout);
    Clock::time_point now = Clock::now();
    double seconds = std::chrono::duration<double>(now - last).count();
    last = now;
    if (tokens > 0 && produced == 0)
      firstToken = std::chrono::duration<double>(now - start).count();
    else if (tokens > 0)
      for (int64_t i = 0; i < tokens; ++i)
        perToken.push_back(seconds / tokens);
    produced += tokens;
  }
  std::printf("\n");
  std::fflush(stdout);
  double median = 0;
  if (!perToken.empty()) {
    std::nth_element(perToken.begin(), perToken.begin() + perToken.size() / 2,
                     perToken.end());
    median = perToken[perToken.size() / 2];
  }
  const SchedulerStats &stats = scheduler.stats();
  std::fprintf(stderr,
               "moe-run: %zu tokens in, %lld out in %lld steps (%lld "
               "speculative); time to first token %.3f ms, time per output "
               "token %.3f ms (median)\n",
               args.prompt.size(), static_cast<long long>(produced),
               static_cast<long long>(stats.steps),
               static_cast<long long>(stats.speculativeSteps),
               firstToken * 1e3, median * 1e3);
  std::fprintf(stderr, "moe-run: draft acceptance by position:");
  for (size_t j = 0; j < stats.draftProposed.size(); ++j)
    std::fprintf(stderr, " %zu: %lld/%lld", j + 1,
                 static_cast<long long>(stats.draftAccepted[j]),
                 static_cast<long long>(stats.draftProposed[j]));
  std::fprintf(stderr, "\n");
  // The target's ranks; the draft runs unpartitioned.
  if (!printDecodeTraffic(target, artifact.plan(), "moe-run: ", error))
    return fail(error);
  return 0;
}
