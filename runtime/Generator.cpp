//===- Generator.cpp - Token generation for one sequence ------------------===//

#include "runtime/Generator.h"

#include "runtime/KVBlockManager.h"

#include <algorithm>
#include <chrono>

using namespace moert;

namespace {
double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       since)
      .count();
}
} // namespace

bool moert::generate(ModelRunner &executor, const std::vector<int32_t> &prompt,
                     const GenerateOptions &options, int64_t maxContext,
                     const std::function<void(int32_t)> &onToken,
                     std::vector<int32_t> &output, GenerateStats &stats,
                     std::string &error) {
  output.clear();
  stats = GenerateStats{};
  stats.promptTokens = prompt.size();
  if (prompt.empty()) {
    error = "the prompt is empty";
    return false;
  }
  if (options.maxNewTokens < 0) {
    error = "the number of tokens to generate is negative";
    return false;
  }
  std::string invalid = validate(options.sampling, executor.vocabSize());
  if (!invalid.empty()) {
    error = invalid;
    return false;
  }
  int64_t total = static_cast<int64_t>(prompt.size()) + options.maxNewTokens;
  if (total > maxContext) {
    error = "prompt (" + std::to_string(prompt.size()) + ") + new tokens (" +
            std::to_string(options.maxNewTokens) +
            ") exceed the model's context of " + std::to_string(maxContext);
    return false;
  }
  KVBlockManager blocks(static_cast<int32_t>(executor.numBlocks()),
                        static_cast<int32_t>(executor.blockSize()));
  // Reserve every block the request can use, so that it never runs out.
  if (!blocks.addSequence(0, total, error)) {
    error = "the KV cache is too small for this request: " + error;
    return false;
  }
  const std::vector<int32_t> &table = blocks.getBlockTable(0);
  int64_t blockSize = executor.blockSize();

  auto start = std::chrono::steady_clock::now();
  StepInputs step;
  step.sequences = 1;
  step.blocksPerSeq = table.size();
  step.blockTables = table;
  auto addToken = [&](int32_t token, int32_t position) {
    step.tokens.push_back(token);
    step.positions.push_back(position);
    step.slotMapping.push_back(table[position / blockSize] * blockSize +
                               position % blockSize);
    step.tokenSeq.push_back(0);
  };
  for (size_t i = 0; i < prompt.size(); ++i)
    addToken(prompt[i], static_cast<int32_t>(i));
  step.logitRows = {static_cast<int32_t>(prompt.size()) - 1};

  std::vector<float> logits;
  std::vector<double> decodeTimes;
  int32_t position = static_cast<int32_t>(prompt.size());
  for (int64_t n = 0; n < options.maxNewTokens; ++n) {
    auto stepStart = std::chrono::steady_clock::now();
    if (!executor.forward(step, logits, error))
      return false;
    int32_t token = sample(logits.data(), executor.vocabSize(),
                           options.sampling, output.size());
    if (n == 0)
      stats.timeToFirstToken = seconds(start);
    else
      decodeTimes.push_back(seconds(stepStart));
    output.push_back(token);
    if (onToken)
      onToken(token);
    if (token == options.stopToken)
      break;
    step.tokens.clear();
    step.positions.clear();
    step.slotMapping.clear();
    step.tokenSeq.clear();
    addToken(token, position++);
    step.logitRows = {0};
  }
  stats.outputTokens = output.size();
  if (!decodeTimes.empty()) {
    std::nth_element(decodeTimes.begin(),
                     decodeTimes.begin() + decodeTimes.size() / 2,
                     decodeTimes.end());
    stats.timePerOutputToken = decodeTimes[decodeTimes.size() / 2];
  }
  return true;
}
