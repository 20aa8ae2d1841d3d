//===- TrafficReport.h - Bytes the ranks sent per decode step ---*- C++ -*-===//
//
// The one report of a partitioned plan's communication that every moe-run
// path prints: generate in one process, under mpirun and with --draft (on
// stderr, after the timings), and bench (in its text report; its JSON
// report carries the same figures). Per pipeline stage, the mean bytes a
// decode step (a speculative verification counts as one) made its busiest
// rank send within the stage and to the next stage, as the planner
// predicts them per rank (moec --report), and what all the ranks sent
// together (runtime/DecodeTraffic.h).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_TRAFFICREPORT_H
#define MOEC_TOOLS_MOE_RUN_TRAFFICREPORT_H

#include "runtime/DecodeTraffic.h"

#include <string>
#include <vector>

namespace moert {

/// The report's lines for `ranks` (every rank's count, in rank order) of a
/// plan `plan`, the first one prefixed with `prefix`, the stages' indented
/// below it; "" when there is no more than one rank.
std::string decodeTrafficText(const PlanInfo &plan,
                              const std::vector<DecodeTraffic> &ranks,
                              const std::string &prefix);

/// Asks `runner` for every rank's count and prints the report on stderr,
/// `prefix` as for decodeTrafficText. False with `error` set when the ranks
/// cannot be asked.
bool printDecodeTraffic(ModelRunner &runner, const PlanInfo &plan,
                        const std::string &prefix, std::string &error);

} // namespace moert

#endif // MOEC_TOOLS_MOE_RUN_TRAFFICREPORT_H
