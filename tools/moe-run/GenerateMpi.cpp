//===- GenerateMpi.cpp - moe-run generate under mpirun --------------------===//

#include "tools/moe-run/GenerateMpi.h"

#include "tools/moe-run/GenerateSpeculative.h"
#include "tools/moe-run/MpiJob.h"
#include "tools/moe-run/TrafficReport.h"

#include <cstdio>

using namespace moert;

int moert::generateUnderMpi(const std::string &path, const GenerateArgs &args,
                            const DraftArgs &draft) {
  MpiJob job(path, {args.checkpoint, args.weightsSeed, args.kvBlocks,
                    args.commTimeout, args.collectives});
  if (!job.isHead())
    return job.follow();
  if (!draft.artifact.empty()) {
    int status = generateSpeculative(job.artifact(), job.runner(), args, draft);
    int stopped = job.finish();
    return status ? status : stopped;
  }
  bool first = true;
  auto stream = [&](int32_t token) {
    std::printf(first ? "%d" : " %d", token);
    std::fflush(stdout);
    first = false;
  };
  std::vector<int32_t> output;
  GenerateStats stats;
  std::string error;
  if (!generate(job.runner(), args.prompt, args.options,
                job.artifact().model().maxContext, stream, output, stats,
                error)) {
    if (!first)
      std::printf("\n");
    // A refused request never left rank 0: stop the others and report it.
    return job.finish(error);
  }
  // Every rank counted its own bytes: ask them before they stop.
  std::vector<DecodeTraffic> traffic;
  if (!job.runner().decodeTraffic(traffic, error))
    return job.finish(error);
  int status = job.finish();
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "moe-run: %lld ranks (%s); %lld tokens in, %lld tokens out; "
               "time to first token %.3f ms, time per output token %.3f ms\n",
               static_cast<long long>(job.communicator().size()),
               job.transport().c_str(),
               static_cast<long long>(stats.promptTokens),
               static_cast<long long>(stats.outputTokens),
               stats.timeToFirstToken * 1e3, stats.timePerOutputToken * 1e3);
  std::fputs(
      decodeTrafficText(job.artifact().plan(), traffic, "moe-run: ").c_str(),
      stderr);
  return status;
}
