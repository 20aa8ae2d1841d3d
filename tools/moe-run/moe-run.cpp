//===- moe-run.cpp - Run compiled moec artifacts --------------------------===//
//
// The serving front end. This build knows the command line it will grow into
// and the runtime pieces that exist so far; it has no MLIR dependency.
//
//===----------------------------------------------------------------------===//

#include <cstdio>
#include <cstring>
#include <string>

static const char *kUsage =
    "usage: moe-run ARTIFACT COMMAND [options]\n"
    "\n"
    "Runs an artifact compiled by moec.\n"
    "\n"
    "commands:\n"
    "  generate   generate tokens for prompt token ids\n"
    "  bench      synthetic serving workload: throughput and latencies\n"
    "  serve      serve requests with continuous batching\n"
    "\n"
    "options:\n"
    "  --help     print this help\n"
    "  --version  print the runtime version\n";

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (!std::strcmp(argv[i], "--version")) {
      std::puts("moe-run 0.1 (artifact format: not yet defined)");
      return 0;
    }
  }
  std::fprintf(stderr,
               "moe-run: error: this runtime cannot load artifacts yet; moec "
               "does not write them yet either (see README.md, status)\n");
  return 2;
}
