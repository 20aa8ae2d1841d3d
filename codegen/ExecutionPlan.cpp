//===- ExecutionPlan.cpp - The host execution plan ------------------------===//

#include "codegen/ExecutionPlan.h"

#include "codegen/FFNGemms.h"
#include "codegen/HostObject.h"
#include "codegen/KVCacheKernels.h"
#include "dialects/moe/MoEOps.h"
#include "passes/Fusion.h"
#include "passes/Partition.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;
using namespace mlir::moe;

static constexpr llvm::StringLiteral kKernelAttr = "moe.kernel";

namespace {
/// A size known at run time: `factor` times the run-time size `symbol`, or
/// the constant `factor` when `symbol` is empty.
struct SymDim {
  std::string symbol;
  int64_t factor = 1;

  llvm::json::Value toJSON() const {
    if (symbol.empty())
      return factor;
    return factor == 1 ? symbol : std::to_string(factor) + symbol;
  }
};
using SymShape = SmallVector<SymDim>;

/// A dynamic size of a kernel result in terms of the kernel's arguments:
/// `constant`, or dimension `dim` of argument `arg` times num / den.
struct DimFormula {
  std::optional<int64_t> constant;
  unsigned arg = 0, dim = 0;
  int64_t num = 1, den = 1;
};
} // namespace

static std::optional<DimFormula> traceDim(Value tensor, unsigned dim,
                                          Block &entry);

/// The formula of index value `value` in a lowered kernel, if it is a
/// product/quotient of an argument's dimension and constants.
static std::optional<DimFormula> traceIndex(Value value, Block &entry) {
  llvm::APInt constant;
  if (matchPattern(value, m_ConstantInt(&constant)))
    return DimFormula{constant.getSExtValue()};
  Operation *def = value.getDefiningOp();
  if (!def)
    return std::nullopt;
  if (auto dimOp = dyn_cast<tensor::DimOp>(def)) {
    std::optional<int64_t> index = dimOp.getConstantIndex();
    if (!index)
      return std::nullopt;
    return traceDim(dimOp.getSource(), *index, entry);
  }
  if (auto cast = dyn_cast<arith::IndexCastOp>(def))
    return traceIndex(cast.getIn(), entry);
  auto scaled = [&](Value operand, Value factor,
                    bool divide) -> std::optional<DimFormula> {
    llvm::APInt c;
    if (!matchPattern(factor, m_ConstantInt(&c)))
      return std::nullopt;
    std::optional<DimFormula> formula = traceIndex(operand, entry);
    if (!formula)
      return std::nullopt;
    int64_t k = c.getSExtValue();
    if (formula->constant)
      formula->constant = divide ? *formula->constant / k
                                 : *formula->constant * k;
    else
      (divide ? formula->den : formula->num) *= k;
    return formula;
  };
  if (auto mul = dyn_cast<arith::MulIOp>(def)) {
    if (auto formula = scaled(mul.getLhs(), mul.getRhs(), false))
      return formula;
    return scaled(mul.getRhs(), mul.getLhs(), false);
  }
  if (auto div = dyn_cast<arith::DivUIOp>(def))
    return scaled(div.getLhs(), div.getRhs(), true);
  if (auto div = dyn_cast<arith::DivSIOp>(def))
    return scaled(div.getLhs(), div.getRhs(), true);
  return std::nullopt;
}

/// The formula of dimension `dim` of `tensor` in a lowered kernel whose
/// entry block is `entry`: followed through empty tensors, destinations and
/// loop-carried values back to the kernel's arguments.
static std::optional<DimFormula> traceDim(Value tensor, unsigned dim,
                                          Block &entry) {
  auto type = cast<ShapedType>(tensor.getType());
  if (!type.isDynamicDim(dim))
    return DimFormula{type.getDimSize(dim)};
  if (auto arg = dyn_cast<BlockArgument>(tensor)) {
    if (arg.getOwner() == &entry)
      return DimFormula{std::nullopt, arg.getArgNumber(), dim};
    if (auto loop = dyn_cast<scf::ForOp>(arg.getOwner()->getParentOp()))
      if (OpOperand *init = loop.getTiedLoopInit(arg))
        return traceDim(init->get(), dim, entry);
    return std::nullopt;
  }
  Operation *def = tensor.getDefiningOp();
  if (auto empty = dyn_cast<tensor::EmptyOp>(def))
    return traceIndex(empty.getDynamicSize(dim), entry);
  if (auto cast = dyn_cast<tensor::CastOp>(def))
    return traceDim(cast.getSource(), dim, entry);
  if (auto loop = dyn_cast<scf::ForOp>(def))
    return traceDim(loop.getInits()[cast<OpResult>(tensor).getResultNumber()],
                    dim, entry);
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(def))
    return traceDim(dps.getTiedOpOperand(cast<OpResult>(tensor))->get(), dim,
                    entry);
  return std::nullopt;
}

/// "bf16", "f32", "i32", ...: MLIR's spelling of `type`.
static std::string typeName(Type type) {
  std::string name;
  llvm::raw_string_ostream(name) << type;
  return name;
}

/// Gives every compute op of `forward` that the plan would otherwise run
/// outside a kernel (embedding, router, expert FFN, ...) a kernel of its
/// own. GEMMs stay library calls; KV-cache ops get their own kernels later.
static LogicalResult outlineLooseOps(ModuleOp module,
                                     ArrayRef<func::FuncOp> stages) {
  SmallVector<Operation *> loose;
  for (func::FuncOp stage : stages)
    for (Operation &op : stage.getBody().front())
      if (isa<CostOpInterface>(op) && !isa<CommOpInterface>(op) &&
          !isa<WeightOp, LinearOp, LMHeadOp, KVCacheWriteOp, AttendOp>(op))
        loose.push_back(&op);
  for (Operation *op : loose)
    fuseOps({op});
  PassManager pm(module.getContext());
  pm.addPass(createMoEOutlineKernels());
  return pm.run(module);
}

namespace {
/// Builds `$.stages[0].execution` from the forward function.
class PlanBuilder {
public:
  PlanBuilder(ModuleOp module, const PlanOptions &options,
              const llvm::StringMap<SmallVector<SmallVector<DimFormula>>>
                  &formulas,
              llvm::StringMap<std::string> &planKernels, KernelForm form,
              ModuleOp code)
      : module(module), options(options), formulas(formulas),
        planKernels(planKernels), form(form), code(code) {}

  FailureOr<llvm::json::Object> build(func::FuncOp forward);

private:
  int64_t addBuffer(llvm::json::Object buffer, SymShape shape) {
    llvm::json::Array dims;
    for (const SymDim &dim : shape)
      dims.push_back(dim.toJSON());
    buffer["shape"] = std::move(dims);
    buffer["id"] = static_cast<int64_t>(buffers.size());
    buffers.push_back(std::move(buffer));
    shapes.push_back(std::move(shape));
    return buffers.size() - 1;
  }
  int64_t addInput(StringRef name, Type element, SymShape shape) {
    int64_t id = addBuffer(llvm::json::Object{{"kind", "input"},
                            {"name", name.str()},
                            {"dtype", typeName(element)}},
                           std::move(shape));
    inputs[name] = id;
    inputIds[name] = id;
    return id;
  }
  /// A buffer for `value`, an activation of the given shape.
  int64_t define(Value value, SymShape shape) {
    auto type = cast<ShapedType>(value.getType());
    int64_t id = addBuffer(
        llvm::json::Object{{"kind", "activation"}, {"dtype", typeName(type.getElementType())}},
        std::move(shape));
    ids[value] = id;
    return id;
  }
  /// The K or V cache of `layer`.
  int64_t cache(char which, int64_t layer, KVCacheType type) {
    auto key = std::make_pair(which, layer);
    auto it = caches.find(key);
    if (it != caches.end())
      return it->second;
    int64_t width = type.getNumKvHeads() * type.getHeadDim();
    int64_t id = addBuffer(llvm::json::Object{{"kind", which == 'k' ? "k_cache" : "v_cache"},
                            {"layer", layer},
                            {"dtype", typeName(type.getElementType())}},
                           {{"S"}, {"", width}});
    caches[key] = id;
    return id;
  }
  LogicalResult step(Operation *op);
  /// Grid kernels may take scratch buffers after their outputs: [rows of
  /// argument moe.scratch_rows_arg, width] f32 activations.
  void appendScratch(func::FuncOp compiled, SmallVectorImpl<int64_t> &args) {
    auto scratch =
        compiled ? compiled->getAttrOfType<IntegerAttr>("moe.scratch_args")
                 : IntegerAttr();
    if (!scratch)
      return;
    auto rowsArg = compiled->getAttrOfType<IntegerAttr>("moe.scratch_rows_arg");
    int64_t rowsOf = args[rowsArg ? rowsArg.getInt() : 0];
    ArrayRef<Type> types = compiled.getArgumentTypes();
    for (Type type : types.take_back(scratch.getInt())) {
      auto memref = cast<MemRefType>(type);
      args.push_back(addBuffer(
          llvm::json::Object{{"kind", "activation"},
                             {"dtype", typeName(memref.getElementType())}},
          {shapes[rowsOf][0], {"", memref.getDimSize(1)}}));
    }
  }
  /// The kernel over the KV cache that `op` (write or attend) calls.
  StringRef kvKernel(Operation *op);
  /// The flash kernel of `op`, for steps of many tokens (grid forms).
  StringRef flashKernel(AttendOp op);
  /// The grouped-GEMM way of the routed experts of `ffn`, a kernel call
  /// with buffers `args` (x, offsets, gate_up, down[, group], y, ...),
  /// for steps of at least `from` tokens (codegen/FFNGemms.h).
  void groupedExperts(ExpertFFNOp ffn, ArrayRef<int64_t> args, int64_t from);
  /// The GEMM way of the dense `ffn`, a kernel call with buffers `args`
  /// (x, up, down[, gate], y, ...), from `from` tokens on.
  void denseGemms(FFNOp ffn, ArrayRef<int64_t> args, int64_t from);
  /// The kernel the plan builds for signature `key` (shared by identical
  /// layers and by the stages): the first time, a fresh name from `base`
  /// and `build(name)` to make it.
  StringRef planKernel(StringRef key, StringRef base,
                       function_ref<void(StringRef name)> build) {
    auto [it, inserted] = planKernels.try_emplace(key);
    if (inserted) {
      SymbolTable symbols(module);
      std::string name = base.str();
      for (int i = 0; symbols.lookup(name); ++i)
        name = base.str() + "_" + std::to_string(i);
      it->second = name;
      build(name);
    }
    return it->second;
  }
  /// An activation buffer [rows, width] of `element`.
  int64_t rowsBuffer(SymDim rows, int64_t width, Type element) {
    return addBuffer(llvm::json::Object{{"kind", "activation"},
                                        {"dtype", typeName(element)}},
                     {rows, {"", width}});
  }

  ModuleOp module;
  const PlanOptions &options;
  const llvm::StringMap<SmallVector<SmallVector<DimFormula>>> &formulas;
  llvm::json::Array buffers, steps;
  llvm::json::Object inputs;
  llvm::StringMap<int64_t> inputIds;
  SmallVector<SymShape> shapes;
  DenseMap<Value, int64_t> ids;
  std::map<std::pair<char, int64_t>, int64_t> caches;
  /// Op signature -> name of a kernel the plan builds (KV cache, expert
  /// activation), shared by the stages' builders.
  llvm::StringMap<std::string> &planKernels;
  KernelForm form;
  /// The kernels' code (grid forms may take scratch buffers).
  ModuleOp code;
  int64_t logits = -1;
};
} // namespace

/// The signature of a KV-cache op's kernel: what sets its code, and not the
/// layer, so that every layer shares it.
static std::string kvSignature(Operation *op) {
  std::string key;
  llvm::raw_string_ostream os(key);
  os << op->getName() << " ";
  llvm::interleaveComma(op->getOperandTypes(), os);
  if (auto attend = dyn_cast<AttendOp>(op))
    os << " heads " << attend.getNumHeads();
  if (auto rope = op->getAttrOfType<RopeAttr>("rope"))
    os << " rope " << rope;
  return key;
}

StringRef PlanBuilder::kvKernel(Operation *op) {
  auto rope = op->getAttrOfType<RopeAttr>("rope");
  std::string key = kvSignature(op);
  std::string base = std::string(rope ? "kernel_rope_" : "kernel_") +
                     (isa<AttendOp>(op) ? "attend" : "kv_cache_write");
  return planKernel(key, base, [&](StringRef name) {
    bool gpu = form == KernelForm::Gpu;
    if (form == KernelForm::Loops) {
      if (auto attend = dyn_cast<AttendOp>(op))
        buildAttendKernel(module, attend, name, options.blockSize);
      else
        buildKVCacheWriteKernel(module, cast<KVCacheWriteOp>(op), name);
    } else if (auto attend = dyn_cast<AttendOp>(op)) {
      buildGridAttendKernel(module, attend, name, options.blockSize, gpu,
                            kAttendThreads);
    } else {
      buildGridKVCacheWriteKernel(module, cast<KVCacheWriteOp>(op), name, gpu,
                                  kGridThreads);
    }
  });
}

StringRef PlanBuilder::flashKernel(AttendOp op) {
  return planKernel("flash " + kvSignature(op),
                    op.getRopeAttr() ? "kernel_rope_flash_attend"
                                     : "kernel_flash_attend",
                    [&](StringRef name) {
                      buildFlashAttendKernel(module, op, name,
                                             options.blockSize,
                                             form == KernelForm::Gpu);
                    });
}

void PlanBuilder::groupedExperts(ExpertFFNOp ffn, ArrayRef<int64_t> args,
                                 int64_t from) {
  int64_t x = args[0], offsets = args[1], gateUp = args[2], down = args[3];
  bool grouped = static_cast<bool>(ffn.getExpertGroup());
  int64_t y = args[grouped ? 5 : 4];
  std::optional<int64_t> group;
  if (grouped)
    group = args[4];
  // The activation kernel, shared by identical layers.
  std::string key;
  llvm::raw_string_ostream os(key);
  os << "expert_activation " << ffn.getActivation() << " "
     << ffn.getGated() << " " << ffn.getGateUp().getType() << " "
     << ffn.getInput().getType();
  StringRef activation =
      planKernel(key, "kernel_expert_activation", [&](StringRef name) {
        buildExpertActivationKernel(module, ffn, name, form == KernelForm::Gpu,
                                    kGridThreads);
      });
  SymDim rows = shapes[x][0];
  int64_t gu = rowsBuffer(
      rows, cast<ShapedType>(ffn.getGateUp().getType()).getDimSize(1),
      Float32Type::get(ffn.getContext()));
  int64_t hidden =
      rowsBuffer(rows, cast<ShapedType>(ffn.getDown().getType()).getDimSize(2),
                 ffn.getInput().getType().getElementType());
  auto gemm = [&](int64_t a, int64_t b, int64_t c) {
    llvm::json::Object step{{"kind", "grouped_gemm"}, {"a", a},
                            {"b", b},                 {"c", c},
                            {"offsets", offsets},     {"from_tokens", from}};
    if (group)
      step["group"] = *group;
    steps.push_back(std::move(step));
  };
  gemm(x, gateUp, gu);
  steps.push_back(llvm::json::Object{
      {"kind", "kernel"},
      {"kernel", activation.str()},
      {"args", llvm::json::Array{gu, hidden}},
      {"from_tokens", from}});
  gemm(hidden, down, y);
}

void PlanBuilder::denseGemms(FFNOp ffn, ArrayRef<int64_t> args,
                             int64_t from) {
  int64_t x = args[0], up = args[1], down = args[2];
  bool gated = static_cast<bool>(ffn.getGate());
  int64_t gate = gated ? args[3] : -1, y = args[gated ? 4 : 3];
  std::string key;
  llvm::raw_string_ostream os(key);
  os << "ffn_activation " << ffn.getActivation() << " " << gated << " "
     << ffn.getDown().getType() << " " << ffn.getInput().getType();
  StringRef activation =
      planKernel(key, "kernel_ffn_activation", [&](StringRef name) {
        buildFFNActivationKernel(module, ffn, name, form == KernelForm::Gpu,
                                 kGridThreads);
      });
  int64_t width = cast<ShapedType>(ffn.getDown().getType()).getDimSize(1);
  SymDim rows = shapes[x][0];
  Type f32 = Float32Type::get(ffn.getContext());
  auto gemm = [&](int64_t a, int64_t b, int64_t c) {
    steps.push_back(llvm::json::Object{{"kind", "gemm"},
                                       {"a", a},
                                       {"b", b},
                                       {"c", c},
                                       {"from_tokens", from}});
  };
  llvm::json::Array activationArgs;
  if (gated) {
    int64_t g = rowsBuffer(rows, width, f32);
    gemm(x, gate, g);
    activationArgs.push_back(g);
  }
  int64_t u = rowsBuffer(rows, width, f32);
  gemm(x, up, u);
  activationArgs.push_back(u);
  int64_t hidden =
      rowsBuffer(rows, width, ffn.getInput().getType().getElementType());
  activationArgs.push_back(hidden);
  steps.push_back(llvm::json::Object{{"kind", "kernel"},
                                     {"kernel", activation.str()},
                                     {"args", std::move(activationArgs)},
                                     {"from_tokens", from}});
  gemm(hidden, down, y);
}

/// The op of type OpTy that is the whole body of kernel `callee`, if any.
template <typename OpTy>
static OpTy soleOp(ModuleOp module, StringRef callee) {
  auto kernel = module.lookupSymbol<func::FuncOp>(callee);
  if (!kernel || kernel.isExternal())
    return {};
  Block &body = kernel.getBody().front();
  if (body.getOperations().size() != 2)
    return {};
  return dyn_cast<OpTy>(body.front());
}

LogicalResult PlanBuilder::step(Operation *op) {
  auto lookup = [&](Value value) -> std::optional<int64_t> {
    auto it = ids.find(value);
    if (it == ids.end())
      return std::nullopt;
    return it->second;
  };
  auto kernelStep = [&](StringRef kernel, ArrayRef<int64_t> args) {
    llvm::json::Array list;
    for (int64_t arg : args)
      list.push_back(arg);
    steps.push_back(llvm::json::Object{
        {"kind", "kernel"}, {"kernel", kernel.str()}, {"args", std::move(list)}});
  };

  if (auto weight = dyn_cast<WeightOp>(op)) {
    RankedTensorType type = weight.getResult().getType();
    SymShape shape;
    for (int64_t size : type.getShape())
      shape.push_back({"", size});
    ids[weight.getResult()] =
        addBuffer(llvm::json::Object{{"kind", "weight"},
                   {"name", weight.getName()},
                   {"dtype", typeName(type.getElementType())}},
                  shape);
    return success();
  }
  if (isa<LinearOp, LMHeadOp>(op)) {
    Value input = op->getOperand(0), weight = op->getOperand(1);
    auto a = lookup(input), b = lookup(weight);
    if (!a || !b)
      return op->emitError("a GEMM operand has no buffer");
    int64_t n = cast<ShapedType>(weight.getType()).getDimSize(0);
    int64_t c = define(op->getResult(0), {shapes[*a][0], {"", n}});
    steps.push_back(llvm::json::Object{
        {"kind", "gemm"}, {"a", *a}, {"b", *b}, {"c", c}});
    return success();
  }
  if (auto write = dyn_cast<KVCacheWriteOp>(op)) {
    auto type = cast<KVCacheType>(write.getKvCache().getType());
    auto keys = lookup(write.getKeys()), values = lookup(write.getValues()),
         positions = lookup(write.getPositions());
    if (!keys || !values || !positions)
      return op->emitError("a KV-cache write operand has no buffer");
    int64_t layer = write.getLayer();
    kernelStep(kvKernel(op), {*keys, *values, *positions,
                              inputIds["slot_mapping"], cache('k', layer, type),
                              cache('v', layer, type)});
    return success();
  }
  if (auto attend = dyn_cast<AttendOp>(op)) {
    if (!attend.getCausal())
      return op->emitError("the host target supports causal attention only");
    auto type = cast<KVCacheType>(attend.getKvCache().getType());
    auto q = lookup(attend.getQueries()),
         positions = lookup(attend.getPositions());
    if (!q || !positions)
      return op->emitError("an attention operand has no buffer");
    int64_t layer = attend.getLayer();
    SymShape shape = shapes[*q];
    int64_t out = define(attend.getResult(), shape);
    StringRef kernel = kvKernel(op);
    SmallVector<int64_t> args{*q,
                              *positions,
                              inputIds["token_seq"],
                              inputIds["block_tables"],
                              cache('k', layer, type),
                              cache('v', layer, type),
                              out};
    appendScratch(module.lookupSymbol<func::FuncOp>(kernel), args);
    kernelStep(kernel, args);
    // Steps with a prefill (chunk) of many tokens: the tensor-core kernel;
    // decode batches keep the split-K kernel, which spreads a sequence
    // over several blocks where the flash kernel gives a block 64 rows.
    int64_t from = flashAttentionTokens(options.flashAttentionTokens);
    bool roundF32 =
        form == KernelForm::HostGrid && options.flashAttentionTokens > 0;
    if (form != KernelForm::Loops && from > 0 &&
        flashAttentionApplies(attend, roundF32)) {
      steps.back().getAsObject()->insert({"below_run_tokens", from});
      kernelStep(flashKernel(attend), ArrayRef(args).take_front(7));
      steps.back().getAsObject()->insert({"from_run_tokens", from});
    }
    return success();
  }
  if (auto rank = dyn_cast<GroupRankOp>(op)) {
    ids[rank.getResult()] = addBuffer(
        llvm::json::Object{{"kind", "group_rank"},
                           {"divisor", static_cast<int64_t>(rank.getDivisor())},
                           {"dtype", "i32"}},
        {{"", 1}});
    return success();
  }
  if (isa<AllReduceOp, AllGatherOp, SendOp>(op)) {
    auto a = lookup(op->getOperand(0));
    if (!a)
      return op->emitError("a collective's operand has no buffer");
    llvm::json::Object step;
    if (auto send = dyn_cast<SendOp>(op)) {
      step = llvm::json::Object{{"kind", "send"},
              {"a", *a},
              {"stage", static_cast<int64_t>(send.getStage())}};
    } else if (isa<AllReduceOp>(op)) {
      step = llvm::json::Object{{"kind", "all_reduce"},
              {"a", *a},
              {"c", define(op->getResult(0), shapes[*a])}};
    } else {
      auto gather = cast<AllGatherOp>(op);
      int64_t dim = gather.getDim(), group = gather.getGroupSize();
      SymShape shape = shapes[*a];
      if (dim >= static_cast<int64_t>(shape.size()))
        return op->emitError("all_gather dimension out of range");
      shape[dim].factor *= group;
      step = llvm::json::Object{{"kind", "all_gather"},
              {"a", *a},
              {"dim", dim},
              {"c", define(gather.getResult(), shape)}};
    }
    steps.push_back(std::move(step));
    return success();
  }
  if (auto exchange = dyn_cast<ExpertExchangeOp>(op)) {
    auto rows = lookup(exchange.getRows()),
         offsets = lookup(exchange.getOffsets()),
         permutation = lookup(exchange.getPermutation());
    if (!rows || !offsets || !permutation)
      return op->emitError("an expert exchange operand has no buffer");
    steps.push_back(llvm::json::Object{
        {"kind", "expert_exchange"},
        {"direction", stringifyExchangeDirection(exchange.getDirection())},
        {"a", *rows},
        {"offsets", *offsets},
        {"permutation", *permutation},
        {"top_k", static_cast<int64_t>(exchange.getTopK())},
        {"c", define(exchange.getResult(), shapes[*rows])}});
    return success();
  }
  if (auto gather = dyn_cast<AllGatherTokensOp>(op)) {
    auto a = lookup(gather.getInput());
    if (!a)
      return op->emitError("a collective's operand has no buffer");
    steps.push_back(llvm::json::Object{
        {"kind", "all_gather_tokens"},
        {"a", *a},
        {"c", define(gather.getResult(), shapes[*a])}});
    return success();
  }
  if (auto recv = dyn_cast<RecvOp>(op)) {
    auto type = cast<RankedTensorType>(recv.getType());
    if (type.getRank() != 2 || !type.isDynamicDim(0))
      return op->emitError("the host plan receives [tokens, features] "
                           "activations only");
    int64_t c = define(recv.getResult(), {{"T"}, {"", type.getDimSize(1)}});
    steps.push_back(llvm::json::Object{
        {"kind", "recv"},
        {"c", c},
        {"stage", static_cast<int64_t>(recv.getStage())}});
    return success();
  }
  if (auto call = dyn_cast<func::CallOp>(op)) {
    auto it = formulas.find(call.getCallee());
    if (it == formulas.end())
      return op->emitError("no lowered kernel named ") << call.getCallee();
    SmallVector<int64_t> args;
    for (Value operand : call.getOperands()) {
      auto id = lookup(operand);
      if (!id)
        return op->emitError("kernel operand has no buffer");
      args.push_back(*id);
    }
    for (auto [result, dims] : llvm::zip(call.getResults(), it->second)) {
      SymShape shape;
      for (const DimFormula &formula : dims) {
        if (formula.constant) {
          shape.push_back({"", *formula.constant});
          continue;
        }
        SymDim source = shapes[args[formula.arg]][formula.dim];
        int64_t scaled = source.factor * formula.num;
        if (scaled % formula.den)
          return op->emitError("a result size of ")
                 << call.getCallee() << " is not a whole multiple of "
                 << source.symbol;
        shape.push_back({source.symbol, scaled / formula.den});
      }
      args.push_back(define(result, shape));
    }
    appendScratch(code ? code.lookupSymbol<func::FuncOp>(call.getCallee())
                       : func::FuncOp(),
                  args);
    kernelStep(call.getCallee(), args);
    // The FFNs: the kernel for small steps, GEMMs from `from` tokens on.
    if (auto ffn = soleOp<ExpertFFNOp>(module, call.getCallee())) {
      int64_t from = expertGemmTokens(ffn, options.expertGemmTokens);
      if (from > 0) {
        steps.back().getAsObject()->insert({"below_tokens", from});
        groupedExperts(ffn, args, from);
      }
    } else if (auto ffn = soleOp<FFNOp>(module, call.getCallee())) {
      int64_t from = ffnGemmTokens(options.ffnGemmTokens);
      if (from > 0) {
        steps.back().getAsObject()->insert({"below_tokens", from});
        denseGemms(ffn, args, from);
      }
    }
    return success();
  }
  if (auto ret = dyn_cast<func::ReturnOp>(op)) {
    // The last stage returns the logits (and the cache); the others only
    // the cache.
    for (Value value : ret.getOperands()) {
      if (isa<KVCacheType>(value.getType()))
        continue;
      auto id = lookup(value);
      if (!id)
        return op->emitError("the logits have no buffer");
      logits = *id;
    }
    return success();
  }
  return op->emitError("the host target cannot execute '")
         << op->getName() << "' yet";
}

FailureOr<llvm::json::Object> PlanBuilder::build(func::FuncOp forward) {
  FunctionType type = forward.getFunctionType();
  auto i32 = IntegerType::get(forward.getContext(), 32);
  auto tokenVector = RankedTensorType::get({ShapedType::kDynamic}, i32);
  if (type.getNumInputs() != 4 || type.getInput(0) != tokenVector ||
      type.getInput(1) != tokenVector || !isa<KVCacheType>(type.getInput(2)) ||
      type.getInput(3) != tokenVector)
    return forward.emitError("the host plan expects forward(tokens, "
                             "positions, kv_cache, logit_rows)");
  Block &body = forward.getBody().front();
  ids[body.getArgument(0)] = addInput("tokens", i32, {{"T"}});
  ids[body.getArgument(1)] = addInput("positions", i32, {{"T"}});
  ids[body.getArgument(3)] = addInput("logit_rows", i32, {{"R"}});
  addInput("slot_mapping", i32, {{"T"}});
  addInput("token_seq", i32, {{"T"}});
  addInput("block_tables", i32, {{"N"}, {"M"}});
  for (Operation &op : body)
    if (failed(step(&op)))
      return failure();
  auto cache = cast<KVCacheType>(type.getInput(2));
  llvm::json::Object outputs;
  if (logits >= 0)
    outputs["logits"] = logits;
  return llvm::json::Object{
      {"block_size", options.blockSize},
      {"kv_layers", cache.getNumLayers()},
      {"kv_width", cache.getNumKvHeads() * cache.getHeadDim()},
      {"kv_dtype", typeName(cache.getElementType())},
      {"buffers", std::move(buffers)},
      {"steps", std::move(steps)},
      {"inputs", std::move(inputs)},
      {"outputs", std::move(outputs)},
  };
}

FailureOr<PlannedStages> mlir::moe::planStages(ModuleOp module,
                                               KernelForm form,
                                               const PlanOptions &options) {
  SmallVector<func::FuncOp> stages = getForwardFunctions(module);
  if (stages.empty())
    return module.emitError("the module has no forward function");
  if (failed(outlineLooseOps(module, stages)))
    return failure();

  // The kernels the stages call, lowered to linalg in a module of their own.
  OwningOpRef<ModuleOp> kernels = ModuleOp::create(module.getLoc());
  llvm::SetVector<StringRef> called;
  for (func::FuncOp stage : stages)
    stage.walk([&](func::CallOp call) { called.insert(call.getCallee()); });
  OpBuilder b(kernels->getBodyRegion());
  for (auto func : module.getOps<func::FuncOp>())
    if (func->hasAttr(kKernelAttr) && called.contains(func.getName()))
      b.clone(*func);
  // Grid kernels: the code compiled is a copy whose kernels take the grid
  // form; the shapes below come from the linalg form.
  OwningOpRef<ModuleOp> gridCode;
  if (form != KernelForm::Loops) {
    gridCode = kernels->clone();
    std::string target = form == KernelForm::Gpu ? "gpu" : "host";
    PassManager gridPm(module.getContext());
    gridPm.addPass(
        createMoEBuildRowKernels(
            {target, kGridThreads, options.sharedMemoryLimit}));
    gridPm.addPass(createMoEBuildExpertKernels({target, kGridThreads}));
    if (form == KernelForm::HostGrid)
      gridPm.addPass(createConvertMoEToLinalg());
    gridPm.addPass(createCanonicalizerPass());
    if (failed(gridPm.run(*gridCode)))
      return failure();
    if (form == KernelForm::Gpu)
      for (auto func : gridCode->getOps<func::FuncOp>())
        if (!func->hasAttr("moe.row_kernel") &&
            !func->hasAttr("moe.grid_kernel"))
          return func.emitError("the cuda target has no GPU kernel for ")
                 << func.getName() << " yet";
  }
  PassManager pm(module.getContext());
  pm.addPass(createConvertMoEToLinalg());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (failed(pm.run(*kernels)))
    return failure();
  WalkResult unlowered = kernels->walk([](Operation *op) {
    if (isa<MoEDialect>(op->getDialect())) {
      op->emitError("the host target has no lowering for '")
          << op->getName() << "' yet";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (unlowered.wasInterrupted())
    return failure();

  llvm::StringMap<SmallVector<SmallVector<DimFormula>>> formulas;
  for (auto kernel : kernels->getOps<func::FuncOp>()) {
    Block &entry = kernel.getBody().front();
    auto &results = formulas[kernel.getName()];
    for (Value result : entry.getTerminator()->getOperands()) {
      auto type = cast<ShapedType>(result.getType());
      SmallVector<DimFormula> dims;
      for (unsigned d = 0; d < type.getRank(); ++d) {
        std::optional<DimFormula> formula = traceDim(result, d, entry);
        if (!formula)
          return kernel.emitError("cannot derive the size of dimension ")
                 << d << " of a result from the kernel's arguments";
        dims.push_back(*formula);
      }
      results.push_back(std::move(dims));
    }
  }

  PlannedStages result;
  llvm::StringMap<std::string> planKernels;
  ModuleOp code = gridCode ? *gridCode : *kernels;
  for (func::FuncOp stage : stages) {
    PlanBuilder builder(module, options, formulas, planKernels, form, code);
    FailureOr<llvm::json::Object> execution = builder.build(stage);
    if (failed(execution))
      return failure();
    result.executions.push_back(std::move(*execution));
  }
  // The kernels the builders added are already on memrefs.
  SmallVector<StringRef> built;
  for (const auto &entry : planKernels)
    built.push_back(entry.getValue());
  llvm::sort(built);
  b.setInsertionPointToEnd(code.getBody());
  for (StringRef name : built)
    b.clone(*module.lookupSymbol<func::FuncOp>(name));
  result.code = gridCode ? std::move(gridCode) : std::move(kernels);
  return result;
}

FailureOr<HostCompilation>
mlir::moe::compileForHost(ModuleOp module, bool gridKernels,
                          const PlanOptions &options) {
  FailureOr<PlannedStages> planned = planStages(
      module, gridKernels ? KernelForm::HostGrid : KernelForm::Loops, options);
  if (failed(planned))
    return failure();
  FailureOr<std::string> object = compileHostSharedObject(*planned->code);
  if (failed(object))
    return failure();
  HostCompilation result;
  result.executions = std::move(planned->executions);
  result.sharedObject = std::move(*object);
  return result;
}
