//===- ModelReport.h - Parameter / FLOP / KV report of a model --*- C++ -*-===//
//
// Summarises a model's `@forward` function through the CostOpInterface of
// its ops: parameters by category, active parameters, FLOPs and bytes of a
// step, and KV-cache bytes per token. Used by `moec --report` and by the
// `moe-report` pass.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_MODELREPORT_H
#define MOEC_PASSES_MODELREPORT_H

#include "dialects/moe/MoEInterfaces.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/Support/JSON.h"

#include <array>
#include <string>

namespace mlir::moe {

/// Name of the function that holds a model's forward pass.
inline constexpr llvm::StringLiteral kForwardFunctionName = "forward";
/// Module attributes the importer sets.
inline constexpr llvm::StringLiteral kModelNameAttr = "moe.model";
inline constexpr llvm::StringLiteral kMaxContextAttr = "moe.max_context";

/// Number of ParamCategory values.
inline constexpr size_t kNumParamCategories =
    static_cast<size_t>(getMaxEnumValForParamCategory()) + 1;

/// What a model holds and costs, as its ops' interfaces report it.
struct ModelSummary {
  std::string name;
  /// Elements and bytes of the weights of each category; a weight read by
  /// several ops (tied embeddings) counts once, in its first reader's category.
  std::array<int64_t, kNumParamCategories> params{};
  std::array<int64_t, kNumParamCategories> paramBytes{};
  int64_t totalParams = 0;
  int64_t totalParamBytes = 0;
  /// Experts per MoE layer (0 for a dense model).
  int64_t numExperts = 0;
  /// Parameters one token uses: routed experts count top_k/experts of their
  /// weights, an embedding table one row.
  int64_t activeParams = 0;
  /// The step the costs below are for.
  CostContext step;
  int64_t stepFlops = 0;
  /// FLOPs of the same step with no cached context: the weights' share
  /// (2 per active parameter) plus elementwise work.
  int64_t stepFlopsNoContext = 0;
  int64_t stepBytesRead = 0;
  int64_t stepBytesWritten = 0;
  /// KV cache: bytes per cached token over all layers, and its shape.
  int64_t kvBytesPerToken = 0;
  int64_t kvLayers = 0, kvHeads = 0, kvHeadDim = 0, kvElementBytes = 0;
};

/// Summarises `module`'s `@forward` function for `step`. A negative
/// `step.contextLength` means the module's `moe.max_context` (0 if unset).
/// Emits an error and fails if the module has no `@forward`.
FailureOr<ModelSummary> summarizeModel(ModuleOp module, CostContext step);

/// Prints `summary` as an aligned, human-readable table.
void printModelReport(const ModelSummary &summary, llvm::raw_ostream &os);

/// A count scaled by powers of 1000: "20.42 B", "607.87 K", "192".
std::string formatCount(double count);

/// `summary` as JSON (the same figures, unscaled).
llvm::json::Value toJSON(const ModelSummary &summary);

} // namespace mlir::moe

#endif // MOEC_PASSES_MODELREPORT_H
