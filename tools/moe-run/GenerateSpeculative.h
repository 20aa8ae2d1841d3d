//===- GenerateSpeculative.h - moe-run generate --draft ---------*- C++ -*-===//
//
// `moe-run ART generate --draft=DRAFT_ART ...`: speculative decoding. The
// request runs through the continuous-batching scheduler with the draft
// artifact's model proposing --draft-tokens tokens per step and the target
// verifying them in one step (runtime/Scheduler.h); greedy output is the
// target's own greedy output. Prints the acceptance per draft position.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_GENERATESPECULATIVE_H
#define MOEC_TOOLS_MOE_RUN_GENERATESPECULATIVE_H

#include "runtime/Artifact.h"
#include "runtime/ModelRunner.h"
#include "tools/moe-run/GenerateMpi.h"

namespace moert {

/// Runs the request on `target` (of `artifact`) with the draft; returns the
/// exit status. Errors go to stderr as `moe-run: error: ...`.
int generateSpeculative(const Artifact &artifact, ModelRunner &target,
                        const GenerateArgs &args, const DraftArgs &draft);

} // namespace moert

#endif // MOEC_TOOLS_MOE_RUN_GENERATESPECULATIVE_H
