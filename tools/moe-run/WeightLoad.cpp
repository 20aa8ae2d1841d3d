//===- WeightLoad.cpp - Filling a model's weights, saying so --------------===//

#include "tools/moe-run/WeightLoad.h"

#include <cstdio>
#include <utility>

using namespace moert;

std::string moert::formatBytes(int64_t bytes) {
  static const char *const kUnits[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 1000)
    return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 999.95 && unit < 5) {
    value /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

WeightLoadReport::WeightLoadReport(std::string checkpoint, std::string who)
    : checkpoint(std::move(checkpoint)), prefix(who.empty() ? "" : who + ": "),
      start(Clock::now()), last(start) {}

std::function<void(int64_t, int64_t)> WeightLoadReport::progress() {
  return [this](int64_t done, int64_t total) {
    if (Clock::now() - last < std::chrono::milliseconds(500))
      return;
    last = Clock::now();
    std::fprintf(stderr, "moe-run: %sloading weights: %s of %s\n",
                 prefix.c_str(), formatBytes(done).c_str(),
                 formatBytes(total).c_str());
    std::fflush(stderr);
  };
}

void WeightLoadReport::finish() const {
  std::fprintf(stderr, "moe-run: %sloaded the weights from %s in %.2f s\n",
               prefix.c_str(), checkpoint.c_str(),
               std::chrono::duration<double>(Clock::now() - start).count());
  std::fflush(stderr);
}
