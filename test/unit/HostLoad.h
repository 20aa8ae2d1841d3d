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

#include "runtime/HostExecutor.h"

#include <gtest/gtest.h>

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

/// One model's artifact, executor (random weights, seed 7) and config.
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

/// `name` is a model, or MODEL.VARIANT for an artifact compiled another way.
inline Loaded load(const std::string &name, int64_t blocks = 32) {
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
    loaded.executor->initRandomWeights(7);
  loaded.config = loadConfig(model);
  return loaded;
}

} // namespace moert::test

#endif // MOEC_TEST_UNIT_HOSTLOAD_H
