//===- Importer.h - Model description to moe IR -----------------*- C++ -*-===//

#ifndef MOEC_TOOLS_MOEC_IMPORTER_H
#define MOEC_TOOLS_MOEC_IMPORTER_H

#include "models/ModelConfig.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::moe {

/// Builds the graph-level moe IR of `config`: a module (attributes
/// `moe.model`, `moe.max_context`) holding
///   func.func @forward(%tokens: tensor<?xi32>, %positions: tensor<?xi32>,
///                      %kv_cache: !moe.kv_cache<...>, %rows: tensor<?xi32>)
///       -> (tensor<?xVOCABxf32>, !moe.kv_cache<...>)
/// (logits of the tokens selected by %rows, and the updated cache) and
///   func.func @sample(%logits, %temperature, %top_k, %top_p, %seeds)
///       -> tensor<?xi32>.
/// Weights are `moe.weight` ops named as in Hugging Face Mixtral/Llama
/// checkpoints. Locations point into `sourceName`.
OwningOpRef<ModuleOp> importModel(const ::moec::ModelConfig &config,
                                  MLIRContext *context, StringRef sourceName);

} // namespace mlir::moe

#endif // MOEC_TOOLS_MOEC_IMPORTER_H
