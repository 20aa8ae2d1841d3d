//===- Bench.h - moe-run ARTIFACT bench -------------------------*- C++ -*-===//
//
// A synthetic serving benchmark: a seeded workload of requests arriving as a
// Poisson process (or all at once) is run against the wall clock through
// continuous batching (runtime/Scheduler.h) or static batching, and the
// throughput, latencies, KV-cache use and scheduler counters are reported
// (text on stdout, optionally JSON and an SVG plot). See Bench.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_BENCH_H
#define MOEC_TOOLS_MOE_RUN_BENCH_H

#include <string>
#include <vector>

/// Runs `moe-run ARTIFACT bench ARGS...`. Prints its own errors as one line
/// `moe-run: error: <message>` on stderr and returns the exit status: 0 on
/// success, 1 for an error, 2 for a bad command line. Exceptions other than
/// its own (out of memory) propagate to the caller.
int benchCommand(const std::string &artifactPath,
                 const std::vector<std::string> &args);

#endif // MOEC_TOOLS_MOE_RUN_BENCH_H
