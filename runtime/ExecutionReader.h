//===- ExecutionReader.h - Reading an artifact's execution plan -*- C++ -*-===//
//
// Internal to the artifact reader: the execution plan of a stage (buffers,
// steps, inputs, outputs), checked field by field.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXECUTIONREADER_H
#define MOERT_EXECUTIONREADER_H

#include "runtime/Artifact.h"
#include "runtime/ArtifactJson.h"

namespace moert {

/// `plan`, found at JSON path `path` of artifact `name`, as an
/// ExecutionInfo; throws ReadError naming the first bad field.
ExecutionInfo readExecutionPlan(const std::string &name, const json &plan,
                                const std::string &path);

} // namespace moert

#endif // MOERT_EXECUTIONREADER_H
