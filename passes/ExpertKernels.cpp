//===- ExpertKernels.cpp - The moe-build-expert-kernels pass --------------===//
//
// The kernels of the routed-expert path, written for a grid of blocks
// (passes/GridEmitter.h) so that the same code runs on the GPU and, with
// one thread per block, on the host:
//
//   router      one block per token: a warp per expert score (lanes read
//               16 bytes at a time), then one thread takes the softmax, the
//               top-k and the renormalisation.
//   dispatch    two launches: one block where one thread counts the copies
//               per expert and gives each copy its row (a counting sort,
//               stable in token order), then a block per copy moving its
//               row 16 bytes per thread at a time.
//   expert_ffn  two launches that read only the routed experts' weights and
//               need no sizes on the host (graph-safe): gate/up, one warp
//               per hidden feature of a group of 4 rows, writing act(gate) *
//               up to an f32 scratch [rows, ffn]; then down, one warp per
//               output feature of a group. A row's expert is found from the
//               offsets; a run of rows of one expert reads its weights once.
//   ffn         the dense FFN (draft models): the same two launches with one
//               expert.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/GridEmitter.h"
#include "passes/KernelMath.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>
#include <functional>
#include <limits>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEBUILDEXPERTKERNELS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

Value cmp(GridEmitter &e, arith::CmpIPredicate predicate, Value a, Value b) {
  return arith::CmpIOp::create(e.b, e.loc, predicate, a, b);
}
Value add(GridEmitter &e, Value a, Value b) {
  return arith::AddIOp::create(e.b, e.loc, a, b);
}
Value mul(GridEmitter &e, Value a, Value b) {
  return arith::MulIOp::create(e.b, e.loc, a, b);
}

/// act(x) in f32 (passes/KernelMath.h).
Value activate(GridEmitter &e, Activation activation, Value x) {
  return mlir::moe::activate(e.b, e.loc, activation, x);
}

void emitRouter(OpBuilder &b, RouterOp op, bool gpu, int64_t threads,
                ValueRange in, ValueRange out) {
  Location loc = op.getLoc();
  Value x = in[0], weight = in[1];
  Value indices = out[0], weights = out[1];
  auto weightType = cast<MemRefType>(weight.getType());
  int64_t experts = weightType.getDimSize(0), dModel = weightType.getDimSize(1);
  int64_t topK = op.getTopK();
  bool normalize = op.getNormalize();
  Value tokens = memref::DimOp::create(b, loc, x, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  auto scoresType = MemRefType::get({experts}, b.getF32Type());
  emitGrid(
      b, loc, gpu, tokens, one, threads, {scoresType},
      [&](GridEmitter &e, Value t, Value, ArrayRef<Value> shared) {
        Value scores = shared[0];
        // One warp per expert score: its lanes read 8 contiguous columns
        // of the token and of the expert's router row at a time.
        Value xs = e.aligned(x), ws = e.aligned(weight);
        Value lane = e.lane();
        Value warps = e.index(e.gpu ? threads / e.lanes() : 1);
        e.strided(e.warp(), e.index(experts), warps, [&](Value ex) {
          Value score = e.warpSum(e.chunkedDots(
              lane, e.lanes(), dModel, 1,
              [&](int64_t, Value c) { return e.loadF32(xs, {t, c}); },
              [&](Value c) { return e.loadF32(ws, {ex, c}); })[0]);
          e.when(cmp(e, arith::CmpIPredicate::eq, lane, e.index(0)), [&] {
            memref::StoreOp::create(e.b, loc, score, scores, ValueRange{ex});
          });
        });
        e.barrier();
        e.onFirstThread([&] {
          OpBuilder &b = e.b;
          Value zero = e.index(0), end = e.index(experts), step = e.index(1);
          auto score = [&](Value i) -> Value {
            return memref::LoadOp::create(b, loc, scores, i);
          };
          Value max =
              e.loop(zero, end, step,
                     {e.f32(-std::numeric_limits<float>::infinity())},
                     [&](Value i, ValueRange acc) -> SmallVector<Value> {
                       return {
                           arith::MaximumFOp::create(b, loc, acc[0], score(i))};
                     })
                  .front();
          auto probability = [&](Value s) -> Value {
            return math::ExpOp::create(b, loc,
                                       arith::SubFOp::create(b, loc, s, max));
          };
          Value denominator = e.stridedSum(
              zero, end, step, [&](Value i) { return probability(score(i)); });
          // k arg-max passes, each skipping the experts already taken.
          SmallVector<Value> chosen, probabilities;
          for (int64_t pass = 0; pass < topK; ++pass) {
            SmallVector<Value> best = e.loop(
                zero, end, step,
                {e.f32(-std::numeric_limits<float>::infinity()), e.index(0)},
                [&](Value i, ValueRange acc) -> SmallVector<Value> {
                  Value s = score(i);
                  Value better = arith::CmpFOp::create(
                      b, loc, arith::CmpFPredicate::OGT, s, acc[0]);
                  for (Value previous : chosen)
                    better = arith::AndIOp::create(
                        b, loc, better,
                        cmp(e, arith::CmpIPredicate::ne, i, previous));
                  return {arith::SelectOp::create(b, loc, better, s, acc[0]),
                          arith::SelectOp::create(b, loc, better, i, acc[1])};
                });
            chosen.push_back(best[1]);
            probabilities.push_back(arith::DivFOp::create(
                b, loc, probability(best[0]), denominator));
          }
          Value total = probabilities.front();
          for (Value p : ArrayRef<Value>(probabilities).drop_front())
            total = arith::AddFOp::create(b, loc, total, p);
          for (int64_t j = 0; j < topK; ++j) {
            Value p = probabilities[j];
            if (normalize)
              p = arith::DivFOp::create(b, loc, p, total);
            memref::StoreOp::create(
                b, loc,
                arith::IndexCastOp::create(b, loc, b.getI32Type(), chosen[j]),
                indices, ValueRange{t, e.index(j)});
            memref::StoreOp::create(b, loc, p, weights,
                                    ValueRange{t, e.index(j)});
          }
        });
      });
}

void emitDispatch(OpBuilder &b, DispatchOp op, bool gpu, int64_t threads,
                  ValueRange in, ValueRange out) {
  Location loc = op.getLoc();
  Value x = in[0], indices = in[1];
  Value permuted = out[0], offsets = out[1], permutation = out[2];
  int64_t experts = op.getNumExperts();
  int64_t topK = cast<MemRefType>(indices.getType()).getDimSize(1);
  int64_t dModel = cast<MemRefType>(x.getType()).getDimSize(1);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  auto cursorType = MemRefType::get({experts}, b.getI32Type());
  emitGrid(
      b, loc, gpu, one, one, threads, {cursorType},
      [&](GridEmitter &e, Value, Value, ArrayRef<Value> shared) {
        OpBuilder &b = e.b;
        Value cursor = shared[0];
        Value zero = e.index(0), step = e.index(1), k = e.index(topK);
        Value tokens = memref::DimOp::create(b, loc, indices, 0);
        Value copies = mul(e, tokens, k);
        auto expertOf = [&](Value copy) {
          return e.loadIndex(indices,
                             {arith::DivUIOp::create(b, loc, copy, k),
                              arith::RemUIOp::create(b, loc, copy, k)});
        };
        e.onFirstThread([&] {
          e.forEach(zero, e.index(experts + 1), step, [&](Value i) {
            memref::StoreOp::create(b, loc, e.i32(0), offsets, i);
          });
          // offsets[ex + 1] counts the copies of expert ex ...
          e.forEach(zero, copies, step, [&](Value c) {
            Value slot = add(e, expertOf(c), step);
            Value n = memref::LoadOp::create(b, loc, offsets, slot);
            memref::StoreOp::create(b, loc,
                                    arith::AddIOp::create(b, loc, n, e.i32(1)),
                                    offsets, slot);
          });
          // ... then becomes the prefix sum; cursors start at offsets.
          e.forEach(zero, e.index(experts), step, [&](Value ex) {
            Value next = add(e, ex, step);
            Value start = memref::LoadOp::create(b, loc, offsets, ex);
            Value sum = arith::AddIOp::create(
                b, loc, start, memref::LoadOp::create(b, loc, offsets, next));
            memref::StoreOp::create(b, loc, sum, offsets, next);
            memref::StoreOp::create(b, loc, start, cursor, ex);
          });
          e.forEach(zero, copies, step, [&](Value c) {
            Value ex = expertOf(c);
            Value row = memref::LoadOp::create(b, loc, cursor, ex);
            memref::StoreOp::create(
                b, loc, arith::AddIOp::create(b, loc, row, e.i32(1)), cursor,
                ex);
            memref::StoreOp::create(b, loc, row, permutation, c);
          });
        });
      });
  // permuted[permutation[c]] = x[c / k]: a block per copy, each thread
  // moving 8 contiguous columns at a time (16-byte loads and stores).
  Value rows = memref::DimOp::create(b, loc, permuted, 0);
  emitGrid(b, loc, gpu, rows, one, threads, {},
           [&](GridEmitter &e, Value c, Value, ArrayRef<Value>) {
             OpBuilder &b = e.b;
             Value from = e.aligned(x), to = e.aligned(permuted);
             Value row = e.loadIndex(permutation, {c});
             Value token = arith::DivUIOp::create(b, loc, c, e.index(topK));
             e.chunks(dModel, [&](ArrayRef<Value> columns) {
               SmallVector<Value> values;
               for (Value column : columns)
                 values.push_back(memref::LoadOp::create(
                     b, loc, from, ValueRange{token, column}));
               for (auto [column, value] : llvm::zip(columns, values))
                 memref::StoreOp::create(b, loc, value, to,
                                         ValueRange{row, column});
             });
           });
}

/// Consecutive routed rows one warp serves per output feature, reading
/// each weight once for all of them when they share an expert.
constexpr int64_t kRowGroup = 4;

/// What the FFN kernels need to know of their weights: the row's expert
/// (and whether this rank holds it) and the weight buffers.
struct FFNSpec {
  int64_t dModel, width;
  bool gated;
  Activation activation;
  /// A row's expert: its index in the rank's weights (clamped into range
  /// when the rank does not hold it), whether the rank holds it, and the
  /// row after the expert's last row.
  struct Expert {
    Value local, held, end;
  };
  std::function<Expert(GridEmitter &, Value row)> expertOf;
  /// Routed experts: gateUp [experts, (2 *) width, dModel] (gate rows
  /// first) and down [experts, dModel, width]. Dense: gate (optional) and
  /// up [width, dModel], down [dModel, width], and no expert index.
  bool perExpert = true;
  Value gateUp, gate, up, down;
};

/// The FFN of each row of x in two launches: hidden = act(gate · x) * (up ·
/// x) (f32, [rows, width]), then result = down · hidden; one warp per output
/// feature of a row, reading only the weights of the row's expert. Each
/// lane reads 8 contiguous columns at a time from buffers assumed 16-byte
/// aligned (as the runtime allocates them), all loads of a chunk before its
/// arithmetic, so the GPU code issues 16-byte loads.
void emitFFN(OpBuilder &b, Location loc, bool gpu, int64_t threads, Value x,
             const FFNSpec &spec, Value result, Value hidden) {
  int64_t lanes = gpu ? 32 : 1;
  int64_t warps = gpu ? threads / lanes : 1;
  Value rows = memref::DimOp::create(b, loc, x, 0);
  // Buffers as the launch body sees them.
  struct Buffers {
    Value x, hidden, gateUp, gate, up, down;
  };
  using Compute = function_ref<SmallVector<Value>(
      GridEmitter &, const Buffers &, ArrayRef<Value> rowList, Value f,
      Value ex, Value lane)>;
  // One warp per output feature of a group of kRowGroup consecutive rows
  // (the block of the group's first row does the work, the others return).
  // Rows are sorted by expert, so a group is a few runs of rows of one
  // expert (usually one or two): the warp reads each weight chunk once per
  // run, for all the run's rows.
  auto perFeature =
      [&](int64_t features, Compute compute,
          function_ref<void(GridEmitter &, Value r, Value f, Value y)> store) {
        Value grid = arith::ConstantIndexOp::create(
            b, loc, (features + warps - 1) / warps);
        emitGrid(
            b, loc, gpu, rows, grid, threads, {},
            [&](GridEmitter &e, Value r0, Value block, ArrayRef<Value>) {
              Value leads = cmp(
                  e, arith::CmpIPredicate::eq,
                  arith::RemUIOp::create(e.b, loc, r0, e.index(kRowGroup)),
                  e.index(0));
              e.when(leads, [&] {
                Buffers buf{e.aligned(x),         e.aligned(hidden),
                            e.aligned(spec.gateUp), e.aligned(spec.gate),
                            e.aligned(spec.up),     e.aligned(spec.down)};
                Value lane = e.lane();
                Value f = add(e, mul(e, block, e.index(warps)), e.warp());
                // The rows (both launches read or write the scratch).
                Value count = memref::DimOp::create(e.b, loc, buf.hidden, 0);
                Value last = arith::SubIOp::create(
                    e.b, loc,
                    arith::MinUIOp::create(e.b, loc,
                                           add(e, r0, e.index(kRowGroup)),
                                           count),
                    e.index(1));
                auto storeFirstLane = [&](Value r, Value y) {
                  e.when(cmp(e, arith::CmpIPredicate::eq, lane, e.index(0)),
                         [&] { store(e, r, f, y); });
                };
                e.when(
                    cmp(e, arith::CmpIPredicate::slt, f, e.index(features)),
                    [&] {
                      // The group's runs of rows of one expert, in order:
                      // at most kRowGroup of them.
                      Value stop = add(e, last, e.index(1));
                      // (A bound the compiler cannot see keeps it from
                      // unrolling the loop.)
                      e.loop(
                          r0, stop, e.index(1), {r0},
                          [&](Value, ValueRange at) -> SmallVector<Value> {
                            Value r = at[0];
                            return e.ifElse(
                                cmp(e, arith::CmpIPredicate::ult, r, stop),
                                [&]() -> SmallVector<Value> {
                                  FFNSpec::Expert ex = spec.expertOf(e, r);
                                  Value end = arith::MinUIOp::create(
                                      e.b, loc, ex.end, stop);
                                  Value runLast = arith::SubIOp::create(
                                      e.b, loc, end, e.index(1));
                                  // Rows past the run are clamped to its
                                  // last, not stored.
                                  SmallVector<Value> rowList;
                                  for (int64_t i = 0; i < kRowGroup; ++i)
                                    rowList.push_back(arith::MinUIOp::create(
                                        e.b, loc, add(e, r, e.index(i)),
                                        runLast));
                                  SmallVector<Value> ys =
                                      compute(e, buf, rowList, f, ex.local,
                                              lane);
                                  for (int64_t i = 0; i < kRowGroup; ++i) {
                                    Value row = add(e, r, e.index(i));
                                    e.when(cmp(e, arith::CmpIPredicate::ult,
                                               row, end),
                                           [&] {
                                             storeFirstLane(
                                                 row,
                                                 arith::SelectOp::create(
                                                     e.b, loc, ex.held, ys[i],
                                                     e.f32(0)));
                                           });
                                  }
                                  return {end};
                                },
                                [&]() -> SmallVector<Value> { return {r}; });
                          });
                    });
              });
            });
      };
  // Rows `rowList` of `vector` · row `weightRow` of `weight` (with the
  // expert index first when per expert), over `length` columns: each weight
  // chunk read once for all the rows; summed over the warp.
  auto dots = [&](GridEmitter &e, Value vector, ArrayRef<Value> rowList,
                  Value weight, Value ex, Value weightRow, int64_t length,
                  Value lane) -> SmallVector<Value> {
    SmallVector<Value> sums = e.chunkedDots(
        lane, lanes, length, rowList.size(),
        [&](int64_t r, Value c) { return e.loadF32(vector, {rowList[r], c}); },
        [&](Value c) {
          SmallVector<Value> at;
          if (spec.perExpert)
            at.push_back(ex);
          at.append({weightRow, c});
          return e.loadF32(weight, at);
        });
    for (Value &sum : sums)
      sum = e.warpSum(sum);
    return sums;
  };

  int64_t width = spec.width;
  perFeature(
      spec.width,
      [&](GridEmitter &e, const Buffers &buf, ArrayRef<Value> rowList, Value f,
          Value ex, Value lane) -> SmallVector<Value> {
        // Routed experts keep gate and up in one tensor, the up rows after
        // the gate rows.
        SmallVector<Value> gateDots;
        if (spec.gated)
          gateDots = dots(e, buf.x, rowList,
                          spec.perExpert ? buf.gateUp : buf.gate, ex, f,
                          spec.dModel, lane);
        Value up = spec.perExpert ? buf.gateUp : buf.up;
        Value upRow = spec.perExpert && spec.gated ? add(e, f, e.index(width))
                                                   : f;
        SmallVector<Value> ys =
            dots(e, buf.x, rowList, up, ex, upRow, spec.dModel, lane);
        for (size_t r = 0; r < ys.size(); ++r)
          ys[r] = spec.gated
                      ? arith::MulFOp::create(
                            e.b, loc, activate(e, spec.activation, gateDots[r]),
                            ys[r])
                            .getResult()
                      : activate(e, spec.activation, ys[r]);
        return ys;
      },
      [&](GridEmitter &e, Value r, Value f, Value y) {
        memref::StoreOp::create(e.b, loc, y, hidden, ValueRange{r, f});
      });
  perFeature(
      spec.dModel,
      [&](GridEmitter &e, const Buffers &buf, ArrayRef<Value> rowList, Value o,
          Value ex, Value lane) -> SmallVector<Value> {
        return dots(e, buf.hidden, rowList, buf.down, ex, o, spec.width, lane);
      },
      [&](GridEmitter &e, Value r, Value o, Value y) {
        e.storeF32(y, result, {r, o});
      });
}

void emitExpertFFN(OpBuilder &b, ExpertFFNOp op, bool gpu, int64_t threads,
                   ValueRange in, ValueRange out, Value hidden) {
  Location loc = op.getLoc();
  Value x = in[0], offsets = in[1], gateUp = in[2], down = in[3];
  Value group = op.getExpertGroup() ? in[4] : Value();
  auto downType = cast<MemRefType>(down.getType());
  int64_t experts = downType.getDimSize(0);
  int64_t globalExperts = op.getNumModelExperts();
  FFNSpec spec;
  spec.dModel = downType.getDimSize(1);
  spec.width = downType.getDimSize(2);
  spec.gated = op.getGated();
  spec.activation = op.getActivation();
  // The local expert of row r (rows of expert g are [offsets[g],
  // offsets[g + 1])), and whether this rank holds it.
  spec.expertOf = [=](GridEmitter &e, Value r) -> FFNSpec::Expert {
    OpBuilder &b = e.b;
    Value zero = e.index(0), step = e.index(1);
    Value global =
        e.loop(zero, e.index(globalExperts), step, {zero},
               [&](Value g, ValueRange acc) -> SmallVector<Value> {
                 Value end = e.loadIndex(offsets, {add(e, g, step)});
                 Value before = cmp(e, arith::CmpIPredicate::sle, end, r);
                 return {arith::SelectOp::create(b, loc, before,
                                                 add(e, acc[0], step), acc[0])};
               })
            .front();
    Value first = zero;
    if (group)
      first = mul(e, e.loadIndex(group, {zero}), e.index(experts));
    Value local = arith::SubIOp::create(b, loc, global, first);
    Value held = arith::AndIOp::create(
        b, loc, cmp(e, arith::CmpIPredicate::sge, local, zero),
        cmp(e, arith::CmpIPredicate::slt, local, e.index(experts)));
    // A clamped index keeps the loads in bounds when the rank does not
    // hold the expert (the value is then not used).
    return {arith::SelectOp::create(b, loc, held, local, zero), held,
            e.loadIndex(offsets, {add(e, global, step)})};
  };
  spec.gateUp = gateUp;
  spec.down = down;
  emitFFN(b, loc, gpu, threads, x, spec, out[0], hidden);
}

/// The dense FFN: the same kernels with one expert, held.
void emitDenseFFN(OpBuilder &b, FFNOp op, bool gpu, int64_t threads,
                  ValueRange in, ValueRange out, Value hidden) {
  Location loc = op.getLoc();
  Value x = in[0], up = in[1], down = in[2];
  Value gate = op.getGate() ? in[3] : Value();
  auto downType = cast<MemRefType>(down.getType());
  FFNSpec spec;
  spec.dModel = downType.getDimSize(0);
  spec.width = downType.getDimSize(1);
  spec.gated = static_cast<bool>(gate);
  spec.activation = op.getActivation();
  // One expert for every row: its run ends with the rows.
  spec.expertOf = [=](GridEmitter &e, Value) -> FFNSpec::Expert {
    return {e.index(0),
            arith::ConstantOp::create(e.b, loc, e.b.getBoolAttr(true)),
            e.index(std::numeric_limits<int32_t>::max())};
  };
  spec.perExpert = false;
  spec.gate = gate;
  spec.up = up;
  spec.down = down;
  emitFFN(b, loc, gpu, threads, x, spec, out[0], hidden);
}

/// The memref type of a kernel argument or result of tensor type `type`.
MemRefType toMemRef(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  return MemRefType::get(tensor.getShape(), tensor.getElementType());
}

/// Rewrites `kernel` (one router, dispatch or expert_ffn op) into its grid
/// form on memrefs: inputs, then one output per result, then the scratch.
LogicalResult buildKernel(func::FuncOp kernel, Operation *op, bool gpu,
                          int64_t threads) {
  Block &body = kernel.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  SmallVector<Type> types;
  for (Type type : kernel.getArgumentTypes())
    types.push_back(toMemRef(type));
  for (Type type : kernel.getResultTypes())
    types.push_back(toMemRef(type));
  auto expertFFN = dyn_cast<ExpertFFNOp>(op);
  auto denseFFN = dyn_cast<FFNOp>(op);
  if (expertFFN || denseFFN) {
    // act(gate) * up of each row, in f32.
    auto down =
        cast<RankedTensorType>(expertFFN ? expertFFN.getDown().getType()
                                         : denseFFN.getDown().getType());
    types.push_back(MemRefType::get(
        {ShapedType::kDynamic, down.getDimSize(down.getRank() - 1)},
        Float32Type::get(kernel.getContext())));
  }
  OpBuilder b(kernel);
  auto rewritten = func::FuncOp::create(b, kernel.getLoc(), kernel.getName(),
                                        b.getFunctionType(types, {}));
  rewritten->setAttrs(kernel->getAttrs());
  rewritten.setFunctionType(b.getFunctionType(types, {}));
  rewritten->setAttr("moe.grid_kernel", b.getUnitAttr());
  if (expertFFN || denseFFN) {
    rewritten->setAttr("moe.scratch_args", b.getI64IntegerAttr(1));
    // The scratch has the rows of the op's input.
    auto input = cast<BlockArgument>(op->getOperand(0));
    rewritten->setAttr("moe.scratch_rows_arg",
                       b.getI64IntegerAttr(input.getArgNumber()));
  }
  Block *entry = rewritten.addEntryBlock();
  b.setInsertionPointToStart(entry);

  unsigned numInputs = kernel.getNumArguments();
  ValueRange args = entry->getArguments();
  ValueRange kernelArgs = args.take_front(numInputs);
  // The op's operands are kernel arguments; its results are returned in
  // some order.
  SmallVector<Value> in;
  for (Value operand : op->getOperands()) {
    auto arg = dyn_cast<BlockArgument>(operand);
    if (!arg || arg.getOwner() != &body)
      return op->emitError("moe-build-expert-kernels: an operand is not a "
                           "kernel argument");
    in.push_back(kernelArgs[arg.getArgNumber()]);
  }
  SmallVector<Value> out;
  for (Value result : op->getResults()) {
    auto it = llvm::find(ret.getOperands(), result);
    if (it == ret.getOperands().end())
      return op->emitError("moe-build-expert-kernels: a result is not "
                           "returned");
    out.push_back(args[numInputs + (it - ret.getOperands().begin())]);
  }
  if (auto router = dyn_cast<RouterOp>(op))
    emitRouter(b, router, gpu, threads, in, out);
  else if (auto dispatch = dyn_cast<DispatchOp>(op))
    emitDispatch(b, dispatch, gpu, threads, in, out);
  else if (expertFFN)
    emitExpertFFN(b, expertFFN, gpu, threads, in, out, args.back());
  else
    emitDenseFFN(b, denseFFN, gpu, threads, in, out, args.back());
  func::ReturnOp::create(b, kernel.getLoc());
  kernel.erase();
  return success();
}

/// The one router, dispatch or expert_ffn op of `kernel`, if that is all it
/// computes.
Operation *expertOp(func::FuncOp kernel) {
  Block &body = kernel.getBody().front();
  if (!llvm::hasSingleElement(body.without_terminator()))
    return nullptr;
  Operation &op = body.front();
  if (auto ffn = dyn_cast<ExpertFFNOp>(op))
    return ffn.getGlobalExperts() && !ffn.getExpertGroup() ? nullptr : &op;
  if (isa<RouterOp, DispatchOp, FFNOp>(op))
    return &op;
  return nullptr;
}

struct MoEBuildExpertKernelsPass
    : public moe::impl::MoEBuildExpertKernelsBase<MoEBuildExpertKernelsPass> {
  using MoEBuildExpertKernelsBase::MoEBuildExpertKernelsBase;
  void runOnOperation() override {
    if (target != "host" && target != "gpu") {
      getOperation().emitError() << "moe-build-expert-kernels: target must "
                                    "be host or gpu, got '"
                                 << target << "'";
      return signalPassFailure();
    }
    if (threads < 32 || threads > 1024 || threads % 32) {
      getOperation().emitError() << "moe-build-expert-kernels: threads must "
                                    "be a multiple of 32 in [32, 1024], got "
                                 << static_cast<int64_t>(threads);
      return signalPassFailure();
    }
    SmallVector<std::pair<func::FuncOp, Operation *>> kernels;
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (func->hasAttr("moe.kernel") && !func.isExternal())
        if (Operation *op = expertOp(func))
          kernels.push_back({func, op});
    for (auto [kernel, op] : kernels) {
      if (!SymbolTable::symbolKnownUseEmpty(kernel, getOperation())) {
        kernel.emitError("moe-build-expert-kernels: kernel '")
            << kernel.getName()
            << "' still has callers; run the pass on a module of kernels";
        return signalPassFailure();
      }
      if (failed(buildKernel(kernel, op, target == "gpu", threads)))
        return signalPassFailure();
    }
  }
};
} // namespace
