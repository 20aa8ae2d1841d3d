//===- AttentionKernel.cpp - Paged attention for a grid of blocks ---------===//
//
// kernel_attend in its grid form (passes/GridEmitter.h), two launches:
//
// 1. Partial attention, one block per (token, KV head, tile of G of its
//    query heads, split of the positions): the tile's queries are staged in
//    shared memory; the block walks its split of the cached positions in
//    chunks of one position per thread. Each thread reads one K row and
//    scores it against all G queries; a warp per head takes the chunk's
//    maximum and the exp-weights (online softmax: a running maximum and
//    sum per head, the accumulator rescaled per chunk); then each thread
//    owns columns of the head dimension and reads each V row of the chunk
//    once for all G heads. So the K/V of a KV head is read once per tile of
//    G query heads (MQA/GQA), and a long sequence is spread over
//    kAttendSplits blocks. The unnormalised output, the maximum and the sum
//    of each (token, head, split) go to f32 scratch buffers.
// 2. The merge, one block per (token, head): the splits combined by their
//    log-sum-exp weights.
//
// G is the largest divisor of the group with G x (columns per thread) <= 32
// accumulators per thread.
//
//===----------------------------------------------------------------------===//

#include "codegen/KVCacheKernels.h"

#include "passes/GridEmitter.h"
#include "passes/KernelMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::moe;

func::FuncOp mlir::moe::buildGridAttendKernel(ModuleOp module, AttendOp op,
                                              StringRef name, int64_t blockSize,
                                              bool gpu, int64_t threads) {
  MLIRContext *ctx = op.getContext();
  auto cache = cast<KVCacheType>(op.getKvCache().getType());
  int64_t headDim = cache.getHeadDim(), kvHeads = cache.getNumKvHeads();
  int64_t kvWidth = kvHeads * headDim;
  int64_t heads = op.getNumHeads();
  int64_t group = heads / kvHeads;
  if (!gpu)
    threads = 1;
  int64_t lanes = gpu ? 32 : 1, warps = threads / lanes;
  // Columns of the head dimension each thread accumulates, and the heads
  // of a tile (the host has no register budget: it checks the GPU's tile).
  int64_t columns = (headDim + threads - 1) / threads;
  int64_t gpuColumns = gpu ? columns : 1;
  int64_t tile = 1;
  for (int64_t d = 1; d <= group; ++d)
    if (group % d == 0 && d * gpuColumns <= 32)
      tile = d;
  int64_t tiles = group / tile, splits = kAttendSplits;

  Type activation = op.getQueries().getType().getElementType();
  Type f32 = Float32Type::get(ctx), i32 = IntegerType::get(ctx, 32);
  int64_t dyn = ShapedType::kDynamic;
  auto tokenVector = MemRefType::get({dyn}, i32);
  auto table = MemRefType::get({dyn, dyn}, i32);
  auto queries = MemRefType::get({dyn, heads * headDim}, activation);
  auto slots = MemRefType::get({dyn, kvWidth}, cache.getElementType());
  // Scratch: per token, [head][split][column] partial outputs, and
  // [head][split][max, sum].
  auto partials = MemRefType::get({dyn, heads * splits * headDim}, f32);
  auto stats = MemRefType::get({dyn, heads * splits * 2}, f32);

  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  Location loc = op.getLoc();
  auto func = func::FuncOp::create(
      b, loc, name,
      b.getFunctionType({queries, tokenVector, tokenVector, table, slots, slots,
                         queries, partials, stats},
                        TypeRange{}));
  func->setAttr("moe.kernel", b.getUnitAttr());
  func->setAttr("moe.grid_kernel", b.getUnitAttr());
  func->setAttr("moe.scratch_args", b.getI64IntegerAttr(2));
  func->setAttr("moe.scratch_rows_arg", b.getI64IntegerAttr(0));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value q = entry->getArgument(0), positions = entry->getArgument(1),
        tokenSeq = entry->getArgument(2), blockTables = entry->getArgument(3),
        kCache = entry->getArgument(4), vCache = entry->getArgument(5),
        out = entry->getArgument(6), partial = entry->getArgument(7),
        stat = entry->getArgument(8);
  Value tokens = memref::DimOp::create(b, loc, q, 0);
  double scale = 1.0 / std::sqrt(static_cast<double>(headDim));
  float negInf = -std::numeric_limits<float>::infinity();

  // Launch 1: partial attention of (token, KV head x tile x split).
  Value gridY =
      arith::ConstantIndexOp::create(b, loc, kvHeads * tiles * splits);
  SmallVector<MemRefType> shared{
      MemRefType::get({tile * headDim}, f32), // the tile's queries
      MemRefType::get({tile * threads}, f32), // scores, then weights
      MemRefType::get({threads}, i32),        // the chunk's slots
      MemRefType::get({tile}, f32),           // running maximum per head
      MemRefType::get({tile}, f32),           // running sum per head
      MemRefType::get({tile}, f32)};          // this chunk's rescale
  emitGrid(
      b, loc, gpu, tokens, gridY, threads, shared,
      [&](GridEmitter &e, Value t, Value y, ArrayRef<Value> buf) {
        OpBuilder &b = e.b;
        Value qs = buf[0], sc = buf[1], slotOf = buf[2], ms = buf[3],
              ls = buf[4], as = buf[5];
        auto add = [&](Value x, Value z) -> Value {
          return arith::AddIOp::create(b, loc, x, z);
        };
        auto mul = [&](Value x, Value z) -> Value {
          return arith::MulIOp::create(b, loc, x, z);
        };
        auto div = [&](Value x, int64_t z) -> Value {
          return arith::DivUIOp::create(b, loc, x, e.index(z));
        };
        auto rem = [&](Value x, int64_t z) -> Value {
          return arith::RemUIOp::create(b, loc, x, e.index(z));
        };
        auto lt = [&](Value x, Value z) -> Value {
          return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, z);
        };
        auto load = [&](Value memref, ValueRange at) -> Value {
          return memref::LoadOp::create(b, loc, memref, at);
        };
        auto store = [&](Value value, Value memref, ValueRange at) {
          memref::StoreOp::create(b, loc, value, memref, at);
        };
        // Cache rows start 16-byte aligned (buffers are, and rows are
        // multiples of 8 elements): K can be read 16 bytes at a time.
        Value kRows =
            gpu && kvWidth % 8 == 0
                ? memref::AssumeAlignmentOp::create(b, loc, kCache, 16)
                      .getResult()
                : kCache;
        Value split = rem(y, splits), rest = div(y, splits);
        Value tileIndex = rem(rest, tiles), kvHead = div(rest, tiles);
        Value firstHead =
            add(mul(kvHead, e.index(group)), mul(tileIndex, e.index(tile)));
        Value kBase = mul(kvHead, e.index(headDim));
        Value seq = e.loadIndex(tokenSeq, {t});
        Value context = add(e.loadIndex(positions, {t}), e.index(1));
        // This split's positions: [lo, hi).
        Value length = div(add(context, e.index(splits - 1)), splits);
        Value lo = mul(split, length);
        Value hi = arith::MinUIOp::create(b, loc, context, add(lo, length));

        // The tile's queries, in f32 (rotated by a folded RoPE); the
        // running statistics.
        RopeAttr rope = op.getRopeAttr();
        Value position =
            rope ? arith::SIToFPOp::create(b, loc, f32,
                                           load(positions, {t}))
                       .getResult()
                 : Value();
        e.strided(e.thread, e.index(tile * headDim), e.threads, [&](Value i) {
          Value column = add(mul(firstHead, e.index(headDim)), i);
          auto load = [&](Value at) { return e.loadF32(q, {t, at}); };
          store(rope ? ropeLoad(b, loc, rope, headDim, position, column, load)
                     : load(column),
                qs, {i});
        });
        e.strided(e.thread, e.index(tile), e.threads, [&](Value h) {
          store(e.f32(negInf), ms, {h});
          store(e.f32(0), ls, {h});
        });
        e.barrier();

        SmallVector<Value> zeros(tile * columns, e.f32(0));
        SmallVector<Value> acc = e.loop(
            lo, hi, e.index(threads), zeros,
            [&](Value chunk, ValueRange carried) -> SmallVector<Value> {
              Value p = add(chunk, e.thread);
              Value valid = lt(p, hi);
              // Score position p against the tile's queries.
              SmallVector<Value> scored = e.ifElse(
                  valid,
                  [&]() -> SmallVector<Value> {
                    Value bs = e.index(blockSize);
                    Value block = e.loadIndex(
                        blockTables,
                        {seq, arith::DivUIOp::create(b, loc, p, bs)});
                    Value slot = add(mul(block, bs),
                                     arith::RemUIOp::create(b, loc, p, bs));
                    SmallVector<Value> init(tile, e.f32(0));
                    // 8 contiguous K elements at a time, loaded before
                    // they are used: one 16-byte load on the GPU.
                    int64_t chunk = headDim % 8 == 0 ? 8 : 1;
                    SmallVector<Value> dots = e.loop(
                        e.index(0), e.index(headDim), e.index(chunk), init,
                        [&](Value d0, ValueRange sums) -> SmallVector<Value> {
                          SmallVector<Value> ks, next(sums.begin(), sums.end());
                          for (int64_t i = 0; i < chunk; ++i)
                            ks.push_back(e.loadF32(
                                kRows,
                                {slot, add(kBase, add(d0, e.index(i)))}));
                          for (int64_t i = 0; i < chunk; ++i) {
                            Value d = add(d0, e.index(i));
                            for (int64_t h = 0; h < tile; ++h) {
                              Value qv =
                                  load(qs, {add(e.index(h * headDim), d)});
                              next[h] = arith::AddFOp::create(
                                  b, loc, next[h],
                                  arith::MulFOp::create(b, loc, qv, ks[i]));
                            }
                          }
                          return next;
                        });
                    SmallVector<Value> result;
                    for (Value dot : dots)
                      result.push_back(
                          arith::MulFOp::create(b, loc, dot, e.f32(scale)));
                    result.push_back(
                        arith::IndexCastOp::create(b, loc, i32, slot));
                    return result;
                  },
                  [&]() -> SmallVector<Value> {
                    SmallVector<Value> result(tile, e.f32(negInf));
                    result.push_back(e.i32(0));
                    return result;
                  });
              for (int64_t h = 0; h < tile; ++h)
                store(scored[h], sc, {add(e.index(h * threads), e.thread)});
              store(scored[tile], slotOf, {e.thread});
              e.barrier();

              // A warp per head: the chunk's maximum, the weights, the
              // running maximum and sum.
              Value n = arith::MinUIOp::create(
                  b, loc, e.index(threads),
                  arith::SubIOp::create(b, loc, hi, chunk));
              Value warp = gpu ? div(e.thread, lanes) : e.index(0);
              Value lane = gpu ? rem(e.thread, lanes) : e.index(0);
              e.forEach(warp, e.index(tile), e.index(warps), [&](Value h) {
                Value row = mul(h, e.index(threads));
                Value partialMax =
                    e.loop(lane, n, e.index(lanes), {e.f32(negInf)},
                           [&](Value j, ValueRange m) -> SmallVector<Value> {
                             return {arith::MaximumFOp::create(
                                 b, loc, m[0], load(sc, {add(row, j)}))};
                           })
                        .front();
                Value old = load(ms, {h});
                Value fresh = arith::MaximumFOp::create(b, loc, old,
                                                        e.warpMax(partialMax));
                Value alpha = math::ExpOp::create(
                    b, loc, arith::SubFOp::create(b, loc, old, fresh));
                Value partialSum = e.stridedSum(
                    lane, n, e.index(lanes), [&](Value j) -> Value {
                      Value w = math::ExpOp::create(
                          b, loc,
                          arith::SubFOp::create(b, loc, load(sc, {add(row, j)}),
                                                fresh));
                      store(w, sc, {add(row, j)});
                      return w;
                    });
                Value sum = e.warpSum(partialSum);
                e.when(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                             lane, e.index(0)),
                       [&] {
                         store(fresh, ms, {h});
                         store(arith::AddFOp::create(
                                   b, loc,
                                   arith::MulFOp::create(b, loc, load(ls, {h}),
                                                         alpha),
                                   sum),
                               ls, {h});
                         store(alpha, as, {h});
                       });
              });
              e.barrier();

              // Each thread's columns: one read of each V row for the tile.
              SmallVector<Value> next;
              for (int64_t c = 0; c < columns; ++c) {
                Value d = add(e.thread, e.index(c * threads));
                ValueRange old = carried.slice(c * tile, tile);
                SmallVector<Value> updated = e.ifElse(
                    lt(d, e.index(headDim)),
                    [&]() -> SmallVector<Value> {
                      SmallVector<Value> init(tile, e.f32(0));
                      SmallVector<Value> sums = e.loop(
                          e.index(0), n, e.index(1), init,
                          [&](Value j,
                              ValueRange partials) -> SmallVector<Value> {
                            Value v =
                                e.loadF32(vCache, {e.loadIndex(slotOf, {j}),
                                                   add(kBase, d)});
                            SmallVector<Value> more;
                            for (int64_t h = 0; h < tile; ++h) {
                              Value w =
                                  load(sc, {add(e.index(h * threads), j)});
                              more.push_back(arith::AddFOp::create(
                                  b, loc, partials[h],
                                  arith::MulFOp::create(b, loc, w, v)));
                            }
                            return more;
                          });
                      SmallVector<Value> result;
                      for (int64_t h = 0; h < tile; ++h)
                        result.push_back(arith::AddFOp::create(
                            b, loc,
                            arith::MulFOp::create(b, loc, old[h],
                                                  load(as, {e.index(h)})),
                            sums[h]));
                      return result;
                    },
                    [&]() -> SmallVector<Value> {
                      return SmallVector<Value>(old.begin(), old.end());
                    });
                next.append(updated);
              }
              // The chunk's weights and slots are read before the next
              // chunk overwrites them.
              e.barrier();
              return next;
            });

        // This split's unnormalised output, maximum and sum per head.
        for (int64_t c = 0; c < columns; ++c) {
          Value d = add(e.thread, e.index(c * threads));
          e.when(lt(d, e.index(headDim)), [&] {
            for (int64_t h = 0; h < tile; ++h) {
              Value head = add(firstHead, e.index(h));
              Value at = add(
                  mul(add(mul(head, e.index(splits)), split), e.index(headDim)),
                  d);
              store(acc[c * tile + h], partial, {t, at});
            }
          });
        }
        e.strided(e.thread, e.index(tile), e.threads, [&](Value h) {
          Value head = add(firstHead, h);
          Value at = mul(add(mul(head, e.index(splits)), split), e.index(2));
          store(load(ms, {h}), stat, {t, at});
          store(load(ls, {h}), stat, {t, add(at, e.index(1))});
        });
      });

  // Launch 2: merge the splits of each (token, head).
  Value headsGrid = arith::ConstantIndexOp::create(b, loc, heads);
  emitGrid(
      b, loc, gpu, tokens, headsGrid, threads, {},
      [&](GridEmitter &e, Value t, Value h, ArrayRef<Value>) {
        OpBuilder &b = e.b;
        auto statOf = [&](int64_t s, int64_t which) -> Value {
          Value at = arith::AddIOp::create(
              b, loc, arith::MulIOp::create(b, loc, h, e.index(splits * 2)),
              e.index(s * 2 + which));
          return memref::LoadOp::create(b, loc, stat, ValueRange{t, at});
        };
        Value best = statOf(0, 0);
        for (int64_t s = 1; s < splits; ++s)
          best = arith::MaximumFOp::create(b, loc, best, statOf(s, 0));
        SmallVector<Value> weights;
        Value total = e.f32(0);
        for (int64_t s = 0; s < splits; ++s) {
          Value w = math::ExpOp::create(
              b, loc, arith::SubFOp::create(b, loc, statOf(s, 0), best));
          weights.push_back(w);
          total = arith::AddFOp::create(
              b, loc, total, arith::MulFOp::create(b, loc, w, statOf(s, 1)));
        }
        e.strided(e.thread, e.index(headDim), e.threads, [&](Value d) {
          Value sum = e.f32(0);
          for (int64_t s = 0; s < splits; ++s) {
            Value at = arith::AddIOp::create(
                b, loc,
                arith::MulIOp::create(
                    b, loc,
                    arith::AddIOp::create(
                        b, loc,
                        arith::MulIOp::create(b, loc, h, e.index(splits)),
                        e.index(s)),
                    e.index(headDim)),
                d);
            Value o =
                memref::LoadOp::create(b, loc, partial, ValueRange{t, at});
            sum = arith::AddFOp::create(
                b, loc, sum, arith::MulFOp::create(b, loc, weights[s], o));
          }
          Value column = arith::AddIOp::create(
              b, loc, arith::MulIOp::create(b, loc, h, e.index(headDim)), d);
          e.storeF32(arith::DivFOp::create(b, loc, sum, total), out,
                     {t, column});
        });
      });
  func::ReturnOp::create(b, loc);
  return func;
}
