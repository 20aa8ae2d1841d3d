//===- ModelReport.cpp - Parameter / FLOP / KV report of a model ----------===//

#include "passes/ModelReport.h"

#include "dialects/moe/MoEOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::moe;

FailureOr<ModelSummary> mlir::moe::summarizeModel(ModuleOp module,
                                                  CostContext step) {
  auto forward = module.lookupSymbol<func::FuncOp>(kForwardFunctionName);
  if (!forward)
    return module.emitError() << "model has no @" << kForwardFunctionName
                              << " function to report on";
  ModelSummary summary;
  if (auto name = module->getAttrOfType<StringAttr>(kModelNameAttr))
    summary.name = name.str();
  if (step.contextLength < 0) {
    auto maxContext = module->getAttrOfType<IntegerAttr>(kMaxContextAttr);
    step.contextLength = maxContext ? maxContext.getInt() : 0;
  }
  summary.step = step;

  // Each weight counts once: in its first reader's category, with the largest
  // fraction any reader uses.
  struct WeightUse {
    ParamCategory category;
    double activeFraction;
  };
  llvm::MapVector<Value, WeightUse> weights;
  walkCostOps(forward, [&](CostOpInterface op) {
    summary.stepFlops += op.getFlops(step);
    summary.stepFlopsNoContext += op.getFlops(CostContext{step.numTokens, 0});
    summary.stepBytesRead += op.getBytesRead(step);
    summary.stepBytesWritten += op.getBytesWritten(step);
  });
  // Parameters: every op that reads weights, fused kernels' bodies included
  // (their block arguments stand for the kernel's inputs).
  auto resolve = [](Value value) {
    if (auto arg = dyn_cast<BlockArgument>(value))
      if (auto fused = dyn_cast<FusedOp>(arg.getOwner()->getParentOp()))
        return fused.getInputs()[arg.getArgNumber()];
    return value;
  };
  forward.walk([&](CostOpInterface op) {
    std::optional<ParamCategory> category = op.getParamCategory();
    if (!category)
      return;
    if (op.getNumExperts() > 1)
      summary.numExperts = std::max(summary.numExperts, op.getNumExperts());
    for (Value operand : op->getOperands()) {
      Value weight = resolve(operand);
      if (!weight.getDefiningOp<WeightOp>())
        continue;
      auto [it, inserted] = weights.try_emplace(
          weight, WeightUse{*category, op.getActiveWeightFraction()});
      if (!inserted)
        it->second.activeFraction =
            std::max(it->second.activeFraction, op.getActiveWeightFraction());
    }
  });

  double active = 0;
  for (auto &[weight, use] : weights) {
    auto type = cast<RankedTensorType>(weight.getType());
    int64_t elements = type.getNumElements();
    size_t index = static_cast<size_t>(use.category);
    summary.params[index] += elements;
    summary.paramBytes[index] += getTensorBytes(type);
    summary.totalParams += elements;
    summary.totalParamBytes += getTensorBytes(type);
    active += use.activeFraction * elements;
  }
  summary.activeParams = static_cast<int64_t>(active + 0.5);

  for (Type type : forward.getArgumentTypes()) {
    if (auto cache = dyn_cast<KVCacheType>(type)) {
      summary.kvBytesPerToken = cache.getBytesPerToken();
      summary.kvLayers = cache.getNumLayers();
      summary.kvHeads = cache.getNumKvHeads();
      summary.kvHeadDim = cache.getHeadDim();
      summary.kvElementBytes = getElementBytes(cache.getElementType());
    }
  }
  return summary;
}

/// 1234567 -> "1,234,567".
static std::string withCommas(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

/// Scales `value` by powers of 1000 and appends `suffixes[power]`:
/// counts read "20.41 B", FLOPs "9.98 GFLOP", bytes "40.84 GB".
static std::string scaled(double value, llvm::ArrayRef<const char *> suffixes) {
  size_t index = 0;
  while (std::abs(value) >= 1000.0 && index + 1 < suffixes.size()) {
    value /= 1000.0;
    ++index;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format(index ? "%.2f" : "%.0f", value) << suffixes[index];
  return text;
}

static std::string scaledCount(double count) {
  return scaled(count, {"", " K", " M", " B", " T", " P"});
}

std::string mlir::moe::formatCount(double count) { return scaledCount(count); }
static std::string scaledFlops(double flops) {
  return scaled(flops, {" FLOP", " kFLOP", " MFLOP", " GFLOP", " TFLOP",
                        " PFLOP"});
}
static std::string scaledBytes(double bytes) {
  return scaled(bytes, {" B", " kB", " MB", " GB", " TB", " PB"});
}

void mlir::moe::printModelReport(const ModelSummary &s, llvm::raw_ostream &os) {
  // label | exact value | scaled value | bytes (parameter rows only)
  auto row = [&](llvm::StringRef label, int64_t value, const std::string &human,
                 std::string bytes = "") {
    os << llvm::left_justify(label, 30)
       << llvm::right_justify(withCommas(value), 20)
       << llvm::right_justify("(" + human + ")", 16);
    if (!bytes.empty())
      os << llvm::right_justify(bytes, 12);
    os << "\n";
  };
  auto category = [](ParamCategory c) { return static_cast<size_t>(c); };
  auto paramRow = [&](llvm::StringRef label, int64_t count, int64_t bytes) {
    row("  " + label.str(), count, scaledCount(count), scaledBytes(bytes));
  };

  os << "model " << (s.name.empty() ? "<unnamed>" : s.name) << "\n";
  os << llvm::left_justify("parameters", 30) << llvm::right_justify("count", 20)
     << llvm::right_justify("", 16) << llvm::right_justify("bytes", 12)
     << "\n";
  const std::pair<ParamCategory, llvm::StringRef> rows[] = {
      {ParamCategory::embedding, "embeddings"},
      {ParamCategory::attention, "attention (shared)"},
      {ParamCategory::norm, "norms"},
      {ParamCategory::router, "routers"},
      {ParamCategory::mlp, "dense mlp"},
      {ParamCategory::lm_head, "lm head"},
  };
  for (auto [c, label] : rows)
    if (s.params[category(c)] || c == ParamCategory::attention)
      paramRow(label, s.params[category(c)], s.paramBytes[category(c)]);
  if (s.numExperts > 0) {
    int64_t experts = s.params[category(ParamCategory::experts)];
    int64_t bytes = s.paramBytes[category(ParamCategory::experts)];
    paramRow("experts, all " + std::to_string(s.numExperts), experts, bytes);
    paramRow("experts, one (all layers)", experts / s.numExperts,
             bytes / s.numExperts);
  }
  paramRow("total", s.totalParams, s.totalParamBytes);
  row("active parameters per token", s.activeParams,
      scaledCount(s.activeParams));

  os << "step: " << s.step.numTokens << " token(s), each attending to "
     << s.step.contextLength << " cached positions\n";
  int64_t flopsPerToken = s.stepFlops / s.step.numTokens;
  row("  FLOPs per token", flopsPerToken, scaledFlops(flopsPerToken));
  int64_t weightFlops = s.stepFlopsNoContext / s.step.numTokens;
  row("    without the context", weightFlops, scaledFlops(weightFlops));
  row("  bytes read per step", s.stepBytesRead, scaledBytes(s.stepBytesRead));
  row("  bytes written per step", s.stepBytesWritten,
      scaledBytes(s.stepBytesWritten));
  row("kv cache bytes per token", s.kvBytesPerToken,
      scaledBytes(s.kvBytesPerToken));
  os << "  = " << s.kvLayers << " layers x 2 (K, V) x " << s.kvHeads
     << " kv heads x " << s.kvHeadDim << " x " << s.kvElementBytes
     << " bytes\n";
}

llvm::json::Value mlir::moe::toJSON(const ModelSummary &s) {
  llvm::json::Object params;
  for (size_t i = 0; i < kNumParamCategories; ++i)
    if (s.params[i])
      params[stringifyParamCategory(static_cast<ParamCategory>(i))] =
          s.params[i];
  return llvm::json::Object{
      {"model", s.name},
      {"parameters", std::move(params)},
      {"total_parameters", s.totalParams},
      {"total_bytes", s.totalParamBytes},
      {"experts", s.numExperts},
      {"active_parameters_per_token", s.activeParams},
      {"tokens", s.step.numTokens},
      {"context", s.step.contextLength},
      {"flops_per_token", s.stepFlops / s.step.numTokens},
      {"flops_per_token_without_context",
       s.stepFlopsNoContext / s.step.numTokens},
      {"bytes_read_per_step", s.stepBytesRead},
      {"bytes_written_per_step", s.stepBytesWritten},
      {"kv_bytes_per_token", s.kvBytesPerToken},
  };
}
