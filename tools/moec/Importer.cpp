//===- Importer.cpp - Model description to moe IR -------------------------===//

#include "tools/moec/Importer.h"

#include "dialects/moe/MoEOps.h"
#include "passes/ModelReport.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

using namespace mlir;
using namespace mlir::moe;

namespace {
/// Emits the ops of one model into @forward.
class ModelBuilder {
public:
  ModelBuilder(const ::moec::ModelConfig &config, ImplicitLocOpBuilder &b,
               Location fileLoc)
      : config(config), b(b), fileLoc(fileLoc) {
    switch (config.dtype) {
    case ::moec::DType::BF16:
      dtype = b.getBF16Type();
      break;
    case ::moec::DType::F16:
      dtype = b.getF16Type();
      break;
    case ::moec::DType::F32:
      dtype = b.getF32Type();
      break;
    }
  }

  Type getDType() const { return dtype; }
  RankedTensorType activations(int64_t width) const {
    return RankedTensorType::get({ShapedType::kDynamic, width}, dtype);
  }

  /// Sets the location of the ops that follow to `name` in the model file.
  void at(const std::string &name) {
    b.setLoc(NameLoc::get(b.getStringAttr(name), fileLoc));
  }

  Value weight(const std::string &name, ArrayRef<int64_t> shape) {
    return WeightOp::create(b, RankedTensorType::get(shape, dtype), name);
  }

  /// RMSNorm or LayerNorm with the weights `prefix.weight` (+ `prefix.bias`).
  Value norm(Value input, const std::string &prefix) {
    at(prefix);
    int64_t d = config.dModel;
    Value scale = weight(prefix + ".weight", {d});
    auto epsilon = b.getF64FloatAttr(config.norm.epsilon);
    if (config.norm.kind == ::moec::NormKind::RMSNorm)
      return RMSNormOp::create(b, input.getType(), input, scale, epsilon);
    Value bias = weight(prefix + ".bias", {d});
    return LayerNormOp::create(b, input.getType(), input, scale, bias, epsilon);
  }

  std::pair<Value, Value> attention(Value input, Value positions, Value cache,
                                    int64_t layer) {
    const ::moec::AttentionConfig &a = config.attention;
    std::string prefix = layerPrefix(layer) + "self_attn";
    at(prefix);
    int64_t d = config.dModel, q = a.numHeads * a.headDim,
            kv = a.numKVHeads * a.headDim;
    Value wq = weight(prefix + ".q_proj.weight", {q, d});
    Value wk = weight(prefix + ".k_proj.weight", {kv, d});
    Value wv = weight(prefix + ".v_proj.weight", {kv, d});
    Value wo = weight(prefix + ".o_proj.weight", {d, q});
    RopeAttr rope;
    if (a.rope)
      rope = RopeAttr::get(b.getContext(), llvm::APFloat(a.rope->theta),
                           a.rope->style == ::moec::RopeStyle::RotateHalf
                               ? RopeStyle::rotate_half
                               : RopeStyle::interleaved);
    auto op = AttentionOp::create(
        b, input.getType(), cache.getType(), input, positions, cache, wq, wk,
        wv, wo, layer, a.numHeads, a.numKVHeads, a.headDim, a.causal, rope);
    return {op.getResult(), op.getNewKvCache()};
  }

  Value mlp(Value input, int64_t layer) {
    const ::moec::MLPConfig &m = config.mlp;
    std::string prefix = layerPrefix(layer) + "mlp";
    at(prefix);
    int64_t d = config.dModel, ffn = m.ffnDim;
    Activation activation = m.activation == ::moec::Activation::SiLU
                                ? Activation::silu
                            : m.activation == ::moec::Activation::GELU
                                ? Activation::gelu
                                : Activation::relu;
    if (!m.isMoE) {
      Value gate = m.gated ? weight(prefix + ".gate_proj.weight", {ffn, d})
                           : Value();
      Value up = weight(prefix + ".up_proj.weight", {ffn, d});
      Value down = weight(prefix + ".down_proj.weight", {d, ffn});
      return FFNOp::create(b, input.getType(), input, up, down, gate,
                           activation);
    }
    int64_t experts = m.numExperts, k = m.topK;
    Value router = weight(prefix + ".gate.weight", {experts, d});
    auto dyn = ShapedType::kDynamic;
    auto route = RouterOp::create(
        b, RankedTensorType::get({dyn, k}, b.getI32Type()),
        RankedTensorType::get({dyn, k}, b.getF32Type()), input, router, k,
        m.normalizeTopK);
    Value gateUp =
        m.gated ? weight(prefix + ".experts.gate_up_proj", {experts, 2 * ffn, d})
                : weight(prefix + ".experts.up_proj", {experts, ffn, d});
    Value down = weight(prefix + ".experts.down_proj", {experts, d, ffn});
    return ExpertsOp::create(
        b, input.getType(), input, route.getIndices(),
        route.getRoutingWeights(), gateUp, down,
        ActivationAttr::get(b.getContext(), activation),
        m.gated ? b.getUnitAttr() : UnitAttr(), /*global_experts=*/nullptr,
        /*all_to_all=*/nullptr, /*expert_group=*/Value());
  }

private:
  static std::string layerPrefix(int64_t layer) {
    return "model.layers." + std::to_string(layer) + ".";
  }

  const ::moec::ModelConfig &config;
  ImplicitLocOpBuilder &b;
  Location fileLoc;
  Type dtype;
};
} // namespace

OwningOpRef<ModuleOp> mlir::moe::importModel(const ::moec::ModelConfig &config,
                                             MLIRContext *context,
                                             StringRef sourceName) {
  context->loadDialect<MoEDialect, func::FuncDialect>();
  Location fileLoc = FileLineColLoc::get(context, sourceName, 1, 1);
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  (*module)->setAttr(kModelNameAttr, StringAttr::get(context, config.name));
  (*module)->setAttr(kMaxContextAttr, IntegerAttr::get(IntegerType::get(context, 64),
                                                    config.maxContext));

  ImplicitLocOpBuilder b(fileLoc, context);
  b.setInsertionPointToEnd(module->getBody());
  ModelBuilder model(config, b, fileLoc);

  auto dyn = ShapedType::kDynamic;
  auto tokenVector = RankedTensorType::get({dyn}, b.getI32Type());
  auto cacheType =
      KVCacheType::get(context, config.numLayers, config.attention.numKVHeads,
                       config.attention.headDim, model.getDType());
  auto logitsType =
      RankedTensorType::get({dyn, config.vocabSize}, b.getF32Type());

  // @forward: embedding, layers, final norm, LM head.
  auto forward = func::FuncOp::create(
      b, kForwardFunctionName,
      b.getFunctionType({tokenVector, tokenVector, cacheType, tokenVector},
                        {logitsType, cacheType}));
  b.setInsertionPointToStart(forward.addEntryBlock());
  Value tokens = forward.getArgument(0), positions = forward.getArgument(1),
        cache = forward.getArgument(2), rows = forward.getArgument(3);

  model.at("model.embed_tokens");
  Value table = model.weight("model.embed_tokens.weight",
                             {config.vocabSize, config.dModel});
  Value hidden = EmbedOp::create(b, model.activations(config.dModel), tokens,
                                 table, /*part=*/Value());
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string prefix = "model.layers." + std::to_string(layer);
    Value normed = model.norm(hidden, prefix + ".input_layernorm");
    auto [attended, newCache] =
        model.attention(normed, positions, cache, layer);
    cache = newCache;
    hidden = AddOp::create(b, hidden, attended);
    normed = model.norm(hidden, prefix + ".post_attention_layernorm");
    hidden = AddOp::create(b, hidden, model.mlp(normed, layer));
  }
  Value normed = model.norm(hidden, "model.norm");
  model.at("lm_head");
  Value selected = GatherTokensOp::create(b, normed.getType(), normed, rows);
  Value head = config.tieEmbeddings
                   ? table
                   : model.weight("lm_head.weight",
                                  {config.vocabSize, config.dModel});
  Value logits = LMHeadOp::create(b, logitsType, selected, head);
  func::ReturnOp::create(b, ValueRange{logits, cache});

  // @sample: one token per row of logits.
  b.setInsertionPointToEnd(module->getBody());
  b.setLoc(NameLoc::get(b.getStringAttr("sample"), fileLoc));
  auto vector = [&](Type element) {
    return RankedTensorType::get({dyn}, element);
  };
  auto sample = func::FuncOp::create(
      b, "sample",
      b.getFunctionType({logitsType, vector(b.getF32Type()),
                         vector(b.getI32Type()), vector(b.getF32Type()),
                         vector(b.getI64Type())},
                        {tokenVector}));
  b.setInsertionPointToStart(sample.addEntryBlock());
  Value next = SampleOp::create(b, tokenVector, sample.getArgument(0),
                                sample.getArgument(1), sample.getArgument(2),
                                sample.getArgument(3), sample.getArgument(4));
  func::ReturnOp::create(b, next);
  return module;
}
