//===- RowKernels.cpp - The moe-build-row-kernels pass --------------------===//
//
// Most fused kernels compute each token row from that row alone: residual
// adds, norms, RoPE, the expert combine, the embedding and the final gather
// of the rows whose logits are wanted. This pass writes such a kernel as one
// row per block: the block's threads stride over the features, reductions
// are block-wide (gpu.all_reduce, which upstream lowers to warp shuffles and
// shared memory), and a barrier separates ops, since an op may read columns
// another thread wrote (RoPE reads its partner element). The host variant
// is the same code with one thread and a loop over rows, so the kernel logic
// is executed and checked on any machine.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/GridEmitter.h"
#include "passes/LinalgBuilder.h"
#include "passes/Passes.h"
#include "passes/KernelMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEBUILDROWKERNELS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Where a [rows, width] value of the kernel lives for the current row: a
/// 2-d memref read at `row`, or a 1-d row buffer (workgroup or stack).
struct RowRef {
  Value memref;
  Value row; // null for a 1-d row buffer
};

/// Emits the body of one row.
class RowEmitter {
public:
  RowEmitter(OpBuilder &b, Location loc, bool gpu, Value row, Value srcRow,
             Value thread, Value threads)
      : b(b), loc(loc), gpu(gpu), row(row), srcRow(srcRow), thread(thread),
        threads(threads) {}

  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, loc,
                                     b.getF32FloatAttr(static_cast<float>(v)));
  }

  Value load(const RowRef &ref, Value column) {
    SmallVector<Value> at;
    if (ref.row)
      at.push_back(ref.row);
    at.push_back(column);
    LinalgBuilder l{b, loc};
    return l.toF32(memref::LoadOp::create(b, loc, ref.memref, at));
  }
  void store(const RowRef &ref, Value column, Value value) {
    if (pending) {
      pending->push_back({ref, column, value});
      return;
    }
    SmallVector<Value> at;
    if (ref.row)
      at.push_back(ref.row);
    at.push_back(column);
    Type element = cast<MemRefType>(ref.memref.getType()).getElementType();
    LinalgBuilder l{b, loc};
    memref::StoreOp::create(b, loc, l.fromF32(value, element), ref.memref, at);
  }

  /// for (base = thread * V; base < width; base += threads * V)
  ///   for (i < V) body(base + i)
  /// with V = GridEmitter::chunkOf(width) contiguous columns, so that a
  /// thread's loads and stores can be 16-byte accesses.
  /// `scalar`: one column at a time (RoPE: its partner loads do not merge,
  /// and eight sines and cosines per thread only add registers).
  void columns(int64_t width, function_ref<void(Value)> body,
               bool scalar = false) {
    int64_t chunk = scalar ? 1 : GridEmitter::chunkOf(width);
    Value start = arith::MulIOp::create(b, loc, thread, index(chunk));
    Value step = arith::MulIOp::create(b, loc, threads, index(chunk));
    scf::ForOp::create(
        b, loc, start, index(width), step, ValueRange{},
        [&](OpBuilder &nb, Location, Value base, ValueRange) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          // The chunk's stores go after all its loads, so
          // that both can be merged (an op never writes a
          // buffer it reads).
          SmallVector<PendingStore> stores;
          pending = &stores;
          for (int64_t i = 0; i < chunk; ++i)
            body(i ? arith::AddIOp::create(b, loc, base, index(i)) : base);
          pending = nullptr;
          for (const PendingStore &s : stores)
            store(s.ref, s.column, s.value);
          scf::YieldOp::create(b, loc);
        });
  }
  /// The sum over the row of term(c), every thread getting the total.
  Value rowSum(int64_t width, function_ref<Value(Value)> term) {
    int64_t chunk = GridEmitter::chunkOf(width);
    Value start = arith::MulIOp::create(b, loc, thread, index(chunk));
    Value step = arith::MulIOp::create(b, loc, threads, index(chunk));
    auto loop = scf::ForOp::create(
        b, loc, start, index(width), step, ValueRange{f32(0)},
        [&](OpBuilder &nb, Location, Value base, ValueRange acc) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value sum = acc[0];
          for (int64_t i = 0; i < chunk; ++i)
            sum = arith::AddFOp::create(
                b, loc, sum,
                term(i ? arith::AddIOp::create(b, loc, base, index(i)) : base));
          scf::YieldOp::create(b, loc, sum);
        });
    Value partial = loop.getResult(0);
    if (!gpu)
      return partial;
    return gpu::AllReduceOp::create(
        b, loc, partial,
        gpu::AllReduceOperationAttr::get(b.getContext(),
                                         gpu::AllReduceOperation::ADD),
        /*uniform=*/true);
  }
  void barrier() {
    if (gpu)
      gpu::BarrierOp::create(b, loc);
  }
  Value loadIndex(Value memref, ValueRange at) {
    return arith::IndexCastOp::create(
        b, loc, b.getIndexType(), memref::LoadOp::create(b, loc, memref, at));
  }

  OpBuilder &b;
  Location loc;
  bool gpu;
  /// The output row, and the token row inputs are read at (they differ
  /// after a final gather).
  Value row, srcRow;
  Value thread, threads;
  /// A store held back until the end of a chunk of columns.
  struct PendingStore {
    RowRef ref;
    Value column, value;
  };
  SmallVector<PendingStore> *pending = nullptr;
};

bool isRowOp(Operation *op) {
  return isa<AddOp, RMSNormOp, LayerNormOp, RopeOp, CombineOp, EmbedOp,
             GatherTokensOp>(op);
}

/// Whether `kernel` is a row kernel: only row ops, 2-d f32/bf16/f16 results,
/// and a gather (if any) last, producing the only result.
bool isRowKernel(func::FuncOp kernel) {
  Block &body = kernel.getBody().front();
  Operation *gather = nullptr;
  for (Operation &op : body.without_terminator()) {
    if (!isRowOp(&op))
      return false;
    if (isa<GatherTokensOp>(op)) {
      if (gather)
        return false;
      gather = &op;
    }
  }
  Operation *ret = body.getTerminator();
  if (gather && (ret->getNumOperands() != 1 ||
                 ret->getOperand(0).getDefiningOp() != gather))
    return false;
  return llvm::all_of(kernel.getResultTypes(), [](Type type) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    return tensor && tensor.getRank() == 2 && tensor.isDynamicDim(0);
  });
}

MemRefType memrefOf(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  return MemRefType::get(tensor.getShape(), tensor.getElementType());
}

/// Emits `op` for the current row, writing `out`. `values` maps the
/// kernel's values to where their row is.
LogicalResult emitOp(RowEmitter &e, Operation *op, RowRef out,
                     DenseMap<Value, RowRef> &rows, IRMapping &args) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  auto rowOf = [&](Value v) { return rows.lookup(v); };
  int64_t width = cast<ShapedType>(op->getResult(0).getType()).getDimSize(1);

  if (auto add = dyn_cast<AddOp>(op)) {
    RowRef x = rowOf(add.getLhs()), y = rowOf(add.getRhs());
    e.columns(width, [&](Value c) {
      e.store(out, c,
              arith::AddFOp::create(b, loc, e.load(x, c), e.load(y, c)));
    });
    return success();
  }
  if (isa<RMSNormOp, LayerNormOp>(op)) {
    bool layer = isa<LayerNormOp>(op);
    RowRef x = rowOf(op->getOperand(0));
    RowRef w{args.lookup(op->getOperand(1)), Value()};
    RowRef bias{layer ? args.lookup(op->getOperand(2)) : Value(), Value()};
    double eps = layer ? cast<LayerNormOp>(op).getEpsilon().convertToDouble()
                       : cast<RMSNormOp>(op).getEpsilon().convertToDouble();
    Value n = e.f32(static_cast<double>(width));
    Value mean = e.f32(0);
    if (layer)
      mean = arith::DivFOp::create(
          b, loc, e.rowSum(width, [&](Value c) { return e.load(x, c); }), n);
    Value squares = e.rowSum(width, [&](Value c) {
      Value d = arith::SubFOp::create(b, loc, e.load(x, c), mean);
      return arith::MulFOp::create(b, loc, d, d).getResult();
    });
    Value scale = math::RsqrtOp::create(
        b, loc,
        arith::AddFOp::create(b, loc, arith::DivFOp::create(b, loc, squares, n),
                              e.f32(eps)));
    e.columns(width, [&](Value c) {
      Value d = arith::SubFOp::create(b, loc, e.load(x, c), mean);
      Value y = arith::MulFOp::create(
          b, loc, arith::MulFOp::create(b, loc, d, scale), e.load(w, c));
      if (layer)
        y = arith::AddFOp::create(b, loc, y, e.load(bias, c));
      e.store(out, c, y);
    });
    return success();
  }
  if (auto rope = dyn_cast<RopeOp>(op)) {
    RowRef x = rowOf(rope.getInput());
    Value position = arith::SIToFPOp::create(
        b, loc, b.getF32Type(),
        memref::LoadOp::create(b, loc, args.lookup(rope.getPositions()),
                               ValueRange{e.srcRow}));
    e.columns(
        width,
        [&](Value c) {
          e.store(out, c,
                  ropeLoad(b, loc, rope.getRope(), rope.getHeadDim(), position,
                           c, [&](Value at) { return e.load(x, at); }));
        },
        /*scalar=*/true);
    return success();
  }
  if (auto combine = dyn_cast<CombineOp>(op)) {
    Value outputs = args.lookup(combine.getExpertOutputs());
    Value permutation = args.lookup(combine.getPermutation());
    Value weights = args.lookup(combine.getRoutingWeights());
    if (!outputs || !permutation || !weights)
      return failure();
    int64_t topK =
        cast<ShapedType>(combine.getRoutingWeights().getType()).getDimSize(1);
    e.columns(width, [&](Value c) {
      Value sum = e.f32(0);
      for (int64_t j = 0; j < topK; ++j) {
        Value copy = e.loadIndex(
            permutation,
            {arith::AddIOp::create(
                b, loc, arith::MulIOp::create(b, loc, e.srcRow, e.index(topK)),
                e.index(j))});
        Value weight = memref::LoadOp::create(b, loc, weights,
                                              ValueRange{e.srcRow, e.index(j)});
        sum = arith::AddFOp::create(
            b, loc, sum,
            arith::MulFOp::create(b, loc, weight,
                                  e.load(RowRef{outputs, copy}, c)));
      }
      e.store(out, c, sum);
    });
    return success();
  }
  if (auto embed = dyn_cast<EmbedOp>(op)) {
    Value table = args.lookup(embed.getTable());
    Value token = e.loadIndex(args.lookup(embed.getTokens()), {e.srcRow});
    int64_t rows = cast<ShapedType>(embed.getTable().getType()).getDimSize(0);
    Value local = token, inRange;
    if (embed.getPart()) {
      Value part = e.loadIndex(args.lookup(embed.getPart()), {e.index(0)});
      local = arith::SubIOp::create(
          b, loc, token, arith::MulIOp::create(b, loc, part, e.index(rows)));
      inRange = arith::AndIOp::create(
          b, loc,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, local,
                                e.index(0)),
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, local,
                                e.index(rows)));
      local = arith::SelectOp::create(b, loc, inRange, local, e.index(0));
    }
    e.columns(width, [&](Value c) {
      Value v = e.load(RowRef{table, local}, c);
      if (inRange)
        v = arith::SelectOp::create(b, loc, inRange, v, e.f32(0));
      e.store(out, c, v);
    });
    return success();
  }
  if (auto gather = dyn_cast<GatherTokensOp>(op)) {
    // Every earlier op computed the gathered token's row: copy it.
    RowRef x = rowOf(gather.getInput());
    e.columns(width, [&](Value c) { e.store(out, c, e.load(x, c)); });
    return success();
  }
  return failure();
}

/// Rewrites `kernel` into its row form.
LogicalResult buildRowKernel(func::FuncOp kernel, bool gpu, int64_t threads,
                             int64_t sharedMemoryLimit) {
  Block &body = kernel.getBody().front();
  Operation *ret = body.getTerminator();
  Location loc = kernel.getLoc();
  MLIRContext *ctx = kernel.getContext();

  // The new signature: inputs as memrefs, then one output per result.
  SmallVector<Type> inputs;
  for (Type type : kernel.getArgumentTypes())
    inputs.push_back(memrefOf(type));
  SmallVector<Type> all = inputs;
  for (Type type : kernel.getResultTypes())
    all.push_back(memrefOf(type));
  // Intermediate rows (not results) go to f32 row buffers, a buffer being
  // reused once the value in it has been read for the last time.
  SmallVector<Operation *> ops;
  for (Operation &op : body.without_terminator())
    ops.push_back(&op);
  DenseMap<Operation *, size_t> position;
  for (auto [i, op] : llvm::enumerate(ops))
    position[op] = i;
  SmallVector<int64_t> bufferWidths;           // one entry per buffer
  DenseMap<Value, size_t> bufferOf;            // intermediate -> buffer
  SmallVector<std::pair<size_t, size_t>> live; // (last use, buffer)
  for (auto [i, op] : llvm::enumerate(ops)) {
    Value result = op->getResult(0);
    if (llvm::is_contained(ret->getOperands(), result))
      continue;
    int64_t width = cast<ShapedType>(result.getType()).getDimSize(1);
    size_t lastUse = i;
    for (Operation *user : result.getUsers())
      lastUse = std::max(lastUse, position.lookup(user));
    // A buffer whose value was last read before this op (an op reads its
    // operands while it writes its result, so not the same op).
    std::optional<size_t> reuse;
    for (auto &[until, buffer] : live)
      if (until < i && bufferWidths[buffer] == width) {
        reuse = buffer;
        until = lastUse;
        break;
      }
    if (!reuse) {
      reuse = bufferWidths.size();
      bufferWidths.push_back(width);
      live.push_back({lastUse, *reuse});
    }
    bufferOf[result] = *reuse;
  }

  // Rows too wide for the block's shared memory live in global scratch
  // buffers [rows, width] f32 (trailing arguments), read at the token row.
  int64_t sharedBytes = 0;
  for (int64_t width : bufferWidths)
    sharedBytes += 4 * width;
  bool scratch = sharedBytes > sharedMemoryLimit;
  std::optional<unsigned> rowsArg;
  // A token-row argument (the expert outputs a combine reads have a row per
  // routed copy instead).
  for (BlockArgument arg : body.getArguments()) {
    auto shaped = dyn_cast<RankedTensorType>(arg.getType());
    bool copies = llvm::any_of(arg.getUsers(), [&](Operation *user) {
      auto combine = dyn_cast<CombineOp>(user);
      return combine && combine->getOperand(0) == arg;
    });
    if (shaped && shaped.getRank() == 2 && shaped.isDynamicDim(0) && !copies &&
        !rowsArg)
      rowsArg = arg.getArgNumber();
  }
  if (scratch && !rowsArg)
    return kernel.emitError("moe-build-row-kernels: no token-row argument "
                            "to size the scratch rows by");
  if (scratch)
    for (int64_t width : bufferWidths)
      all.push_back(MemRefType::get({ShapedType::kDynamic, width},
                                    Float32Type::get(ctx)));

  OpBuilder b(ctx);
  b.setInsertionPoint(kernel);
  auto rowKernel = func::FuncOp::create(b, loc, kernel.getName(),
                                        b.getFunctionType(all, {}));
  rowKernel->setAttrs(kernel->getAttrs());
  rowKernel.setFunctionType(b.getFunctionType(all, {}));
  rowKernel->setAttr("moe.row_kernel", b.getUnitAttr());
  if (scratch) {
    rowKernel->setAttr("moe.scratch_args",
                       b.getI64IntegerAttr(bufferWidths.size()));
    rowKernel->setAttr("moe.scratch_rows_arg", b.getI64IntegerAttr(*rowsArg));
  }
  Block *entry = rowKernel.addEntryBlock();
  b.setInsertionPointToStart(entry);

  IRMapping args;
  for (auto [old, now] :
       llvm::zip(body.getArguments(),
                 entry->getArguments().take_front(inputs.size())))
    args.map(old, now);
  ValueRange outputs = entry->getArguments()
                           .drop_front(inputs.size())
                           .take_front(kernel.getNumResults());
  ValueRange scratchRows =
      entry->getArguments().drop_front(inputs.size() + outputs.size());

  // The rows to compute: the result's, or the gathered ones.
  GatherTokensOp gather;
  for (Operation &op : body.without_terminator())
    if (auto g = dyn_cast<GatherTokensOp>(op))
      gather = g;
  Value rowCount = memref::DimOp::create(b, loc, outputs.front(), 0);

  auto emitRow = [&](OpBuilder &rb, Value row, Value thread, Value nthreads,
                     ArrayRef<Value> buffers) -> LogicalResult {
    Value srcRow = row;
    if (gather)
      srcRow = arith::IndexCastOp::create(
          rb, loc, rb.getIndexType(),
          memref::LoadOp::create(rb, loc, args.lookup(gather.getRows()),
                                 ValueRange{row}));
    RowEmitter e(rb, loc, gpu, row, srcRow, thread, nthreads);
    DenseMap<Value, RowRef> rows;
    for (BlockArgument arg : body.getArguments()) {
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      if (type && type.getRank() == 2 && type.isDynamicDim(0))
        rows[arg] = RowRef{args.lookup(arg), srcRow};
    }
    for (auto [value, buffer] : bufferOf)
      rows[value] = scratch ? RowRef{scratchRows[buffer], srcRow}
                            : RowRef{buffers[buffer], Value()};
    for (auto [value, output] : llvm::zip(ret->getOperands(), outputs))
      rows[value] = RowRef{
          output, isa<GatherTokensOp>(value.getDefiningOp()) ? row : srcRow};
    for (Operation *op : ops) {
      if (failed(emitOp(e, op, rows.lookup(op->getResult(0)), rows, args)))
        return op->emitError("moe-build-row-kernels: cannot emit this op");
      e.barrier();
    }
    return success();
  };

  if (gpu) {
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    Value block = arith::ConstantIndexOp::create(b, loc, threads);
    SmallVector<Type> workgroup;
    for (int64_t width : scratch ? ArrayRef<int64_t>() : bufferWidths)
      workgroup.push_back(MemRefType::get(
          {width}, b.getF32Type(), MemRefLayoutAttrInterface(),
          gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup)));
    auto launch =
        gpu::LaunchOp::create(b, loc, rowCount, one, one, block, one, one,
                              Value(), Type(), ValueRange{}, workgroup);
    OpBuilder lb = OpBuilder::atBlockBegin(&launch.getBody().front());
    SmallVector<Value> buffers(launch.getWorkgroupAttributions().begin(),
                               launch.getWorkgroupAttributions().end());
    // The runtime's buffers start 16-byte aligned (codegen/README.md):
    // telling LLVM lets it merge a thread's contiguous columns into 16-byte
    // loads and stores.
    IRMapping aligned;
    for (Value arg : entry->getArguments())
      if (isa<MemRefType>(arg.getType()))
        aligned.map(
            arg,
            memref::AssumeAlignmentOp::create(lb, loc, arg, 16).getResult());
    if (failed(emitRow(lb, launch.getBlockIds().x, launch.getThreadIds().x,
                       launch.getBlockSize().x, buffers)))
      return failure();
    gpu::TerminatorOp::create(lb, loc);
    for (Value arg : entry->getArguments())
      if (Value replacement = aligned.lookupOrNull(arg))
        arg.replaceUsesWithIf(replacement, [&](OpOperand &use) {
          return use.getOwner() != replacement.getDefiningOp() &&
                 launch->isProperAncestor(use.getOwner());
        });
  } else {
    SmallVector<Value> buffers;
    for (int64_t width : scratch ? ArrayRef<int64_t>() : bufferWidths)
      buffers.push_back(memref::AllocaOp::create(
          b, loc, MemRefType::get({width}, b.getF32Type())));
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    LogicalResult emitted = success();
    scf::ForOp::create(b, loc, zero, rowCount, one, ValueRange{},
                       [&](OpBuilder &fb, Location, Value row, ValueRange) {
                         emitted = emitRow(fb, row, zero, one, buffers);
                         scf::YieldOp::create(fb, loc);
                       });
    if (failed(emitted))
      return failure();
  }
  func::ReturnOp::create(b, loc);
  kernel.erase();
  return success();
}

struct MoEBuildRowKernelsPass
    : public moe::impl::MoEBuildRowKernelsBase<MoEBuildRowKernelsPass> {
  using MoEBuildRowKernelsBase::MoEBuildRowKernelsBase;
  void runOnOperation() override {
    if (target != "host" && target != "gpu") {
      getOperation().emitError() << "moe-build-row-kernels: target must be "
                                    "host or gpu, got '"
                                 << target << "'";
      return signalPassFailure();
    }
    if (threads < 1 || threads > 1024) {
      getOperation().emitError() << "moe-build-row-kernels: threads must be "
                                    "in [1, 1024], got "
                                 << static_cast<int64_t>(threads);
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> kernels;
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (func->hasAttr("moe.kernel") && !func.isExternal() &&
          isRowKernel(func))
        kernels.push_back(func);
    for (func::FuncOp kernel : kernels) {
      // The signature changes (results become out-parameters): the code
      // generator runs this on the module of kernels alone.
      if (!SymbolTable::symbolKnownUseEmpty(kernel, getOperation())) {
        kernel.emitError("moe-build-row-kernels: kernel '")
            << kernel.getName()
            << "' still has callers; run the pass on a module of kernels";
        return signalPassFailure();
      }
      if (failed(buildRowKernel(kernel, target == "gpu", threads,
                                sharedMemoryLimit)))
        return signalPassFailure();
    }
  }
};
} // namespace
