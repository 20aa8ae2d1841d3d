//===- StepTime.h - moe-run ARTIFACT step-time ------------------*- C++ -*-===//
//
// Times decode steps of a whole batch at a given context length: fills the
// KV cache of `batch` sequences with `context` tokens each, then runs decode
// steps (one token per sequence) and reports the median step time (wall
// clock around the step, inputs and logits included) next to its floor: the
// bytes a decode step must read (this rank's weights, the routed experts'
// share of them, and the KV cache) over the measured device-to-device copy
// rate (cuda) or nothing (host).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_STEPTIME_H
#define MOEC_TOOLS_MOE_RUN_STEPTIME_H

#include <string>
#include <vector>

/// Runs `moe-run ARTIFACT step-time ARGS...`; prints its own errors as one
/// line `moe-run: error: <message>` and returns the exit status (0, 1, or 2
/// for a bad command line).
int stepTimeCommand(const std::string &artifactPath,
                    const std::vector<std::string> &args);

#endif // MOEC_TOOLS_MOE_RUN_STEPTIME_H
