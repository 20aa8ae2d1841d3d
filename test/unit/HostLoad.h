//===- HostLoad.h - Host test artifacts with random weights -----*- C++ -*-===//
//
// The small models' host artifacts (compiled by moec at build time) opened
// in a HostExecutor with random weights, next to their model config, for
// the tests that compare them with the reference model.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TEST_UNIT_HOSTLOAD_H
#define MOEC_TEST_UNIT_HOSTLOAD_H

#include "ReferenceModel.h"
#include "StepHelpers.h"

#include "runtime/HostExecutor.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace moert::test {

inline std::string artifactPath(const std::string &model) {
  return std::string(MOEC_HOST_ARTIFACTS_DIR) + "/" + model + ".host.moeart";
}

inline moec::ModelConfig loadConfig(const std::string &model) {
  std::vector<std::string> errors;
  auto config = moec::loadModelConfig(
      std::string(MOEC_MODELS_DIR) + "/" + model + ".json", errors);
  EXPECT_TRUE(config) << (errors.empty() ? "" : errors.front());
  return config ? *config : moec::ModelConfig{};
}

/// One model's artifact, executor (random weights) and config.
struct Loaded {
  std::unique_ptr<Artifact> artifact;
  std::unique_ptr<HostExecutor> executor;
  moec::ModelConfig config;

  moec::reference::WeightFn weights() const {
    return [this](const std::string &name) {
      const std::vector<float> *w = executor->weight(name);
      if (!w)
        throw std::invalid_argument("no weight " + name);
      return *w;
    };
  }
};

/// `name` is a model, or MODEL.VARIANT for an artifact compiled another way;
/// the executor has `blocks` KV blocks and random weights from `seed`.
inline Loaded load(const std::string &name, int64_t blocks = 32,
                   uint64_t seed = 7) {
  Loaded loaded;
  std::string error;
  std::string model = name.substr(0, name.find('.'));
  loaded.artifact = Artifact::open(artifactPath(name), error);
  EXPECT_TRUE(loaded.artifact) << error;
  if (!loaded.artifact)
    return loaded;
  loaded.executor = HostExecutor::create(*loaded.artifact, 0, blocks, error);
  EXPECT_TRUE(loaded.executor) << error;
  if (loaded.executor)
    loaded.executor->initRandomWeights(seed);
  loaded.config = loadConfig(model);
  return loaded;
}

/// The largest relative error of `m`'s logits, at every position of a
/// 21-token prompt (two blocks of 16, the second partly filled), against
/// the reference model, recorded as the test's max_relative_error; -1
/// (and a failure) when the step fails.
inline double prefillError(Loaded &m) {
  std::vector<int32_t> prompt = somePrompt(m.config.vocabSize, 21);
  std::vector<float> logits;
  std::string error;
  if (!m.executor->forward(prefill(prompt, {5, 2}, 16), logits, error)) {
    ADD_FAILURE() << error;
    return -1;
  }
  std::vector<float> expected =
      moec::reference::forward(m.config, m.weights(), prompt);
  EXPECT_EQ(logits.size(), expected.size());
  double err = relativeError(logits, expected);
  char text[32];
  std::snprintf(text, sizeof text, "%.2e", err);
  ::testing::Test::RecordProperty("max_relative_error", text);
  return err;
}

} // namespace moert::test

#endif // MOEC_TEST_UNIT_HOSTLOAD_H
