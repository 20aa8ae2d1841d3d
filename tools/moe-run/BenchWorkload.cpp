//===- BenchWorkload.cpp - moe-run bench options and workload -------------===//
//
// The options of `moe-run ARTIFACT bench` and the workload they describe.
//
// Workload. --requests=N requests, generated from --seed alone (the same
// options give the same requests on every machine: a SplitMix64 generator,
// integer draws by rejection, no <random> distributions, whose results
// differ between standard libraries). Separate streams draw the arrivals,
// the prompt lengths, the output lengths and the prompt tokens, so that
// changing one option (say --rate) leaves the others' draws alone. Arrivals
// form a Poisson process of --rate requests per second (the first at 0,
// then exponential gaps), or all come at 0 with --rate=inf. Prompt and
// output lengths come from fixed:N or uniform:MIN:MAX (inclusive); prompt
// tokens are uniform in the vocabulary. Every request asks for exactly its
// output length (no stop token), greedy unless --temperature > 0.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/BenchInternal.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace moert::bench {

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

namespace {

/// The generator of stream `stream` of `seed`.
Rng streamOf(uint64_t seed, uint64_t stream) {
  Rng mix(seed ^ (stream * 0xD1B54A32D192ED03ULL));
  return Rng(mix.next());
}

constexpr int64_t kMaxLength = int64_t(1) << 24;

bool parseInt(const std::string &text, int64_t &value) {
  if (text.empty() ||
      !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-'))
    return false;
  char *end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE)
    return false;
  value = parsed;
  return true;
}

int64_t parseInteger(const std::string &option, const std::string &text,
                     int64_t min, int64_t max) {
  int64_t value = 0;
  if (!parseInt(text, value) || value < min || value > max)
    usageError("bad " + option + " value '" + text +
               "': expected an integer in [" + std::to_string(min) + ", " +
               std::to_string(max) + "]");
  return value;
}

double parseNumber(const std::string &option, const std::string &text) {
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value))
    usageError("bad " + option + " value '" + text + "': expected a number");
  return value;
}

LengthDistribution parseLength(const std::string &option,
                               const std::string &text) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, ':'))
    parts.push_back(part);
  if (!text.empty() && text.back() == ':')
    parts.push_back("");
  LengthDistribution d;
  d.text = text;
  bool ok = false;
  if (parts.size() == 1 || (parts.size() == 2 && parts[0] == "fixed")) {
    ok = parseInt(parts.back(), d.min);
    d.max = d.min;
  } else if (parts.size() == 3 && parts[0] == "uniform") {
    ok = parseInt(parts[1], d.min) && parseInt(parts[2], d.max);
  }
  if (!ok || d.min < 1 || d.max < d.min || d.max > kMaxLength)
    usageError("bad " + option + " value '" + text +
               "': expected fixed:N or uniform:MIN:MAX with 1 <= MIN <= MAX "
               "<= " +
               std::to_string(kMaxLength));
  if (parts.size() == 1)
    d.text = "fixed:" + text;
  return d;
}

} // namespace

BenchOptions parseOptions(const std::vector<std::string> &args) {
  BenchOptions o;
  bool haveBatch = false;
  std::string draftOption; // a draft option given, for the error without one
  for (const std::string &arg : args) {
    if (arg.empty() || arg[0] != '-')
      usageError("bench takes no positional arguments, got '" + arg + "'");
    size_t eq = arg.find('=');
    if (eq == std::string::npos)
      usageError("bench options take a value: " + arg + "=...");
    std::string name = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (name == "--mode") {
      if (value == "continuous")
        o.mode = Mode::Continuous;
      else if (value == "static")
        o.mode = Mode::Static;
      else
        usageError("bad --mode value '" + value +
                   "': expected continuous or static");
    } else if (name == "--requests") {
      o.requests = parseInteger(name, value, 1, 1000000);
    } else if (name == "--rate") {
      if (value == "inf") {
        o.rate = std::numeric_limits<double>::infinity();
      } else {
        char *end = nullptr;
        o.rate = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !(o.rate > 0) ||
            !std::isfinite(o.rate))
          usageError("bad --rate value '" + value +
                     "': expected requests per second (a positive number) "
                     "or inf");
      }
    } else if (name == "--prompt-len") {
      o.promptLength = parseLength(name, value);
    } else if (name == "--output-len") {
      o.outputLength = parseLength(name, value);
    } else if (name == "--seed") {
      o.seed = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--temperature") {
      o.sampling.temperature = static_cast<float>(parseNumber(name, value));
    } else if (name == "--top-k") {
      o.sampling.topK =
          static_cast<int32_t>(parseInteger(name, value, 0, INT32_MAX));
    } else if (name == "--top-p") {
      o.sampling.topP = static_cast<float>(parseNumber(name, value));
    } else if (name == "--max-tokens-per-step") {
      o.maxTokensPerStep = parseInteger(name, value, 1, INT32_MAX);
    } else if (name == "--max-running") {
      o.maxRunning = parseInteger(name, value, 1, INT32_MAX);
    } else if (name == "--batch") {
      o.batch = parseInteger(name, value, 1, INT32_MAX);
      haveBatch = true;
    } else if (name == "--kv-blocks") {
      o.kvBlocks = parseInteger(name, value, 1, INT32_MAX);
    } else if (name == "--comm-timeout") {
      o.commTimeout = parseNumber(name, value);
      if (!(o.commTimeout > 0))
        usageError("--comm-timeout must be a positive number of seconds");
    } else if (name == "--collectives") {
      if (value != "auto" && value != "nccl" && value != "host")
        usageError("--collectives must be auto, nccl or host, got '" + value +
                   "'");
      o.collectives = value;
    } else if (name == "--weights-seed") {
      o.weightsSeed = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--weights") {
      if (value.empty())
        usageError("--weights needs a CHECKPOINT");
      o.checkpoint = value;
    } else if (name == "--draft") {
      if (value.empty())
        usageError("--draft needs a DRAFT_ART");
      o.draft = value;
    } else if (name == "--draft-tokens") {
      o.draftTokens = parseInteger(name, value, 1, 64);
      draftOption = name;
    } else if (name == "--speculate") {
      if (value != "auto" && value != "always")
        usageError("--speculate must be auto or always, got '" + value + "'");
      o.speculateAlways = value == "always";
      draftOption = name;
    } else if (name == "--draft-weights") {
      if (value.empty())
        usageError("--draft-weights needs a CHECKPOINT");
      o.draftCheckpoint = value;
      draftOption = name;
    } else if (name == "--draft-weights-seed") {
      o.draftWeightsSeed = parseInteger(name, value, 0, INT64_MAX);
      draftOption = name;
    } else if (name == "--json") {
      if (value.empty())
        usageError("--json needs a FILE");
      o.jsonPath = value;
    } else if (name == "--plot") {
      if (value.empty())
        usageError("--plot needs a FILE");
      o.plotPath = value;
    } else {
      usageError("unknown option '" + name + "' for bench");
    }
  }
  if (haveBatch && o.mode != Mode::Static)
    usageError("--batch is the batch size of --mode=static (continuous "
               "batching takes --max-running)");
  if (!draftOption.empty() && o.draft.empty())
    usageError(draftOption + " needs --draft=DRAFT_ART");
  if (!o.draft.empty() && o.mode == Mode::Static)
    usageError("speculative decoding (--draft) runs with --mode=continuous");
  if (o.batch == 0)
    o.batch = o.maxRunning;
  return o;
}

//===----------------------------------------------------------------------===//
// Workload
//===----------------------------------------------------------------------===//

std::vector<WorkItem> makeWorkload(const BenchOptions &o, int64_t vocab) {
  Rng arrivals = streamOf(o.seed, 1), prompts = streamOf(o.seed, 2),
      outputs = streamOf(o.seed, 3), tokens = streamOf(o.seed, 4);
  std::vector<WorkItem> items(static_cast<size_t>(o.requests));
  double time = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    WorkItem &item = items[i];
    if (i > 0 && std::isfinite(o.rate))
      time += -std::log1p(-arrivals.uniform()) / o.rate;
    item.arrival = time;
    item.prompt.resize(static_cast<size_t>(o.promptLength.draw(prompts)));
    for (int32_t &token : item.prompt)
      token = static_cast<int32_t>(tokens.below(static_cast<uint64_t>(vocab)));
    item.outputTokens = o.outputLength.draw(outputs);
  }
  return items;
}

SamplingParams samplingFor(const BenchOptions &o, int64_t id) {
  SamplingParams params = o.sampling;
  Rng mix(o.seed ^ (static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ULL) ^
          0x5EED5EED5EED5EEDULL);
  params.seed = mix.next();
  return params;
}

} // namespace moert::bench
