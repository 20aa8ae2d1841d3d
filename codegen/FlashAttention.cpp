//===- FlashAttention.cpp - Prefill attention on the tensor cores ---------===//
//
// kernel_flash_attend: causal attention over the paged KV cache for steps
// that hold a prefill or a chunk of one (the plan guards it by the most
// tokens of one sequence in the step), tiled with an online softmax, its
// two products on the tensor cores (passes/WarpTiles.h: mma.sync m16n8k16,
// bf16 operands, f32 accumulators).
//
// The rows of a KV head's problem are its (token, query head) pairs, token
// major: T x G rows for G query heads per KV head. A block of 4 warps takes
// 64 consecutive rows (a warp 16) of one KV head, so the heads that share
// a KV head (MQA/GQA) share each read of its K/V, and the decode tokens
// of a mixed step still fill the tiles with heads. Per block:
//
// 1. The 64 rows' queries go to shared memory as bf16 (rotated by a folded
//    RoPE on the way).
// 2. The block's tokens fall into runs of one sequence (a step may hold
//    several sequences: chunked prefill beside decodes). Per run, the block
//    walks the run's cached positions 0..max position in chunks of 32: the
//    chunk's K and V rows are gathered through the block table into shared
//    memory (zeros past the context), then each warp computes
//    S = Q K^T (16 x 32) on the tensor cores, masks what a row may not see
//    (a row of another run, a position past its token's), updates its
//    running maxima and sums, rescales O and adds P V (P rounded to bf16,
//    taken from the S accumulators without leaving the registers).
// 3. O / sum is written out.
//
// So a chunk of a prefill attends to the cached prefix and to itself: the
// KV-cache write before it has stored the chunk's own K/V.
//
//===----------------------------------------------------------------------===//

#include "codegen/KVCacheKernels.h"

#include "passes/GridEmitter.h"
#include "passes/KernelMath.h"
#include "passes/WarpTiles.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::moe;

namespace {
/// Rows of a block, of a warp, and cached positions per chunk.
constexpr int64_t kBlockRows = 64, kWarpRows = 16, kChunk = 32;
constexpr int64_t kWarps = kBlockRows / kWarpRows;
} // namespace

bool mlir::moe::flashAttentionApplies(AttendOp op, bool roundF32) {
  auto cache = cast<KVCacheType>(op.getKvCache().getType());
  int64_t headDim = cache.getHeadDim();
  auto fits = [&](Type type) {
    return type.isBF16() || (roundF32 && type.isF32());
  };
  return fits(op.getQueries().getType().getElementType()) &&
         fits(cache.getElementType()) && headDim % 16 == 0 && headDim <= 256;
}

int64_t mlir::moe::flashAttentionTokens(int64_t requested) {
  return requested >= 0 ? requested : 16;
}

func::FuncOp mlir::moe::buildFlashAttendKernel(ModuleOp module, AttendOp op,
                                               StringRef name,
                                               int64_t blockSize, bool gpu) {
  MLIRContext *ctx = op.getContext();
  if (gpu)
    ctx->loadDialect<LLVM::LLVMDialect, NVVM::NVVMDialect>();
  auto cache = cast<KVCacheType>(op.getKvCache().getType());
  int64_t headDim = cache.getHeadDim(), kvHeads = cache.getNumKvHeads();
  int64_t kvWidth = kvHeads * headDim;
  int64_t heads = op.getNumHeads(), group = heads / kvHeads;
  // Shared rows are padded by 8 elements (16 bytes): a warp's fragment
  // loads then fall in distinct banks.
  int64_t stride = headDim + 8;
  // A lane's accumulator elements per 16 x 8 tile and its rows (GPU: the
  // fragment; host: the whole tile).
  int64_t elements = WarpTiles::elementsOf(gpu),
          ownRows = WarpTiles::rowsOf(gpu);

  Type bf16 = BFloat16Type::get(ctx), f32 = Float32Type::get(ctx),
       i32 = IntegerType::get(ctx, 32);
  int64_t dyn = ShapedType::kDynamic;
  auto tokenVector = MemRefType::get({dyn}, i32);
  auto table = MemRefType::get({dyn, dyn}, i32);
  auto queries = MemRefType::get({dyn, heads * headDim},
                                 op.getQueries().getType().getElementType());
  auto slots = MemRefType::get({dyn, kvWidth}, cache.getElementType());

  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  Location loc = op.getLoc();
  auto func =
      func::FuncOp::create(b, loc, name,
                           b.getFunctionType({queries, tokenVector, tokenVector,
                                              table, slots, slots, queries},
                                             TypeRange{}));
  func->setAttr("moe.kernel", b.getUnitAttr());
  func->setAttr("moe.grid_kernel", b.getUnitAttr());
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value q = entry->getArgument(0), positions = entry->getArgument(1),
        tokenSeq = entry->getArgument(2), blockTables = entry->getArgument(3),
        kCache = entry->getArgument(4), vCache = entry->getArgument(5),
        out = entry->getArgument(6);
  Value tokens = memref::DimOp::create(b, loc, q, 0);
  // Row tiles: ceil(T * G / 64) (a grid size the plan can state: "GT/64").
  Value rowCount = arith::MulIOp::create(
      b, loc, tokens, arith::ConstantIndexOp::create(b, loc, group));
  Value rowTiles = arith::CeilDivUIOp::create(
      b, loc, rowCount, arith::ConstantIndexOp::create(b, loc, kBlockRows));
  Value kvHeadsGrid = arith::ConstantIndexOp::create(b, loc, kvHeads);
  float negInf = -std::numeric_limits<float>::infinity();
  double scale = 1.0 / std::sqrt(static_cast<double>(headDim));

  SmallVector<MemRefType> shared{
      MemRefType::get({kBlockRows * stride}, bf16), // queries
      MemRefType::get({kChunk * stride}, bf16),     // the chunk's K rows
      MemRefType::get({kChunk * stride}, bf16)};    // the chunk's V rows
  SmallVector<MemRefType> privates{
      MemRefType::get({kChunk / 8 * elements}, f32),  // S, then P
      MemRefType::get({headDim / 8 * elements}, f32), // O
      MemRefType::get({ownRows}, f32),                // running maxima
      MemRefType::get({ownRows}, f32),                // running sums
      MemRefType::get({ownRows}, i32)};               // positions a row sees
  emitGrid(
      b, loc, gpu, rowTiles, kvHeadsGrid, kWarps * 32, shared,
      [&](GridEmitter &e, Value tile, Value kvHead, ArrayRef<Value> buf) {
        OpBuilder &b = e.b;
        WarpTiles w{e};
        Value qs = buf[0], ks = buf[1], vs = buf[2], s = buf[3], o = buf[4],
              ms = buf[5], ls = buf[6], limits = buf[7];
        auto add = [&](Value x, Value y) -> Value {
          return arith::AddIOp::create(b, loc, x, y);
        };
        auto mul = [&](Value x, Value y) -> Value {
          return arith::MulIOp::create(b, loc, x, y);
        };
        auto idx = [&](int64_t v) { return e.index(v); };
        auto lt = [&](Value x, Value y) -> Value {
          return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
        };
        auto both = [&](Value x, Value y) -> Value {
          return arith::AndIOp::create(b, loc, x, y);
        };
        auto load = [&](Value memref, ValueRange at) -> Value {
          return memref::LoadOp::create(b, loc, memref, at);
        };
        auto store = [&](Value value, Value memref, ValueRange at) {
          memref::StoreOp::create(b, loc, value, memref, at);
        };
        // The sizes again, inside the launch (a kernel takes only the
        // function's arguments).
        Value tokens = memref::DimOp::create(b, loc, q, 0);
        Value rowCount = mul(tokens, idx(group));
        Value firstRow = mul(tile, idx(kBlockRows));
        Value groupSize = idx(group);
        auto tokenOf = [&](Value row) -> Value {
          return arith::DivUIOp::create(b, loc, row, groupSize);
        };
        // The query column of (row, d): head kvHead * G + row % G.
        auto queryColumn = [&](Value row, Value d) -> Value {
          Value head = add(mul(kvHead, groupSize),
                           arith::RemUIOp::create(b, loc, row, groupSize));
          return add(mul(head, idx(headDim)), d);
        };

        // 1. The block's queries, bf16 in shared memory (zeros past the
        // last row), 8 contiguous columns at a time without RoPE.
        RopeAttr rope = op.getRopeAttr();
        int64_t run = rope ? 1 : 8;
        e.strided(
            mul(e.thread, idx(run)), idx(kBlockRows * headDim),
            mul(e.threads, idx(run)), [&](Value c) {
              Value r = arith::DivUIOp::create(b, loc, c, idx(headDim));
              Value d = arith::RemUIOp::create(b, loc, c, idx(headDim));
              Value row = add(firstRow, r);
              SmallVector<Value> values = e.ifElse(
                  lt(row, rowCount),
                  [&]() -> SmallVector<Value> {
                    Value t = tokenOf(row);
                    auto get = [&](Value column) {
                      return e.loadF32(q, {t, column});
                    };
                    SmallVector<Value> loaded;
                    if (rope) {
                      Value position = arith::SIToFPOp::create(
                          b, loc, f32, load(positions, {t}));
                      loaded.push_back(ropeLoad(b, loc, rope, headDim, position,
                                                queryColumn(row, d), get));
                    } else {
                      for (int64_t i = 0; i < run; ++i)
                        loaded.push_back(get(queryColumn(row, add(d, idx(i)))));
                    }
                    return loaded;
                  },
                  [&]() -> SmallVector<Value> {
                    return SmallVector<Value>(run, e.f32(0));
                  });
              Value at = add(mul(r, idx(stride)), d);
              for (int64_t i = 0; i < run; ++i)
                store(arith::TruncFOp::create(b, loc, bf16, values[i]), qs,
                      {add(at, idx(i))});
            });
        e.barrier();

        // The block's tokens: [firstToken, endToken).
        Value firstToken = tokenOf(firstRow);
        Value endToken = arith::MinUIOp::create(
            b, loc, tokens,
            arith::CeilDivUIOp::create(b, loc, add(firstRow, idx(kBlockRows)),
                                       groupSize));
        Value kRows = e.aligned(kCache), vRows = e.aligned(vCache),
              outRows = e.aligned(out);
        Value kvColumn = mul(kvHead, idx(headDim));

        // 2. Per warp: its 16 rows over each run of one sequence among the
        // block's tokens, chunk by chunk. The stages, then the warp's loop.

        // The run of sequence `seq` starting at token `start`: its end, and
        // its context (one past its largest position).
        auto runOf = [&](Value start, Value seq) -> SmallVector<Value> {
          Value yes = arith::ConstantOp::create(b, loc, b.getBoolAttr(true));
          SmallVector<Value> scan =
              e.loop(start, endToken, idx(1), {start, yes, idx(0)},
                     [&](Value j, ValueRange st) -> SmallVector<Value> {
                       Value same =
                           both(st[1], arith::CmpIOp::create(
                                           b, loc, arith::CmpIPredicate::eq,
                                           e.loadIndex(tokenSeq, {j}), seq));
                       Value seen = add(e.loadIndex(positions, {j}), idx(1));
                       return {arith::SelectOp::create(b, loc, same,
                                                       add(j, idx(1)), st[0]),
                               same,
                               arith::SelectOp::create(
                                   b, loc, same,
                                   arith::MaxUIOp::create(b, loc, st[2], seen),
                                   st[2])};
                     });
          return {scan[0], scan[2]};
        };
        // What each of the lane's rows sees in the run [start, end):
        // positions below its limit (0 for a row outside the run).
        auto setLimits = [&](Value warpRow, Value start, Value end) {
          w.repeat(ownRows, [&](Value i) {
            Value row = add(firstRow, add(warpRow, w.row(i)));
            Value t = tokenOf(row);
            Value inRun =
                both(lt(row, rowCount),
                     both(arith::CmpIOp::create(
                              b, loc, arith::CmpIPredicate::uge, t, start),
                          lt(t, end)));
            Value safe = arith::MinUIOp::create(
                b, loc, t, arith::SubIOp::create(b, loc, tokens, idx(1)));
            store(arith::SelectOp::create(
                      b, loc, inRun,
                      arith::AddIOp::create(b, loc, load(positions, {safe}),
                                            e.i32(1)),
                      e.i32(0)),
                  limits, {i});
          });
        };
        // The K and V rows of positions chunk ..< chunk + 32 of sequence
        // `seq` into shared memory, 8 columns (16 bytes) at a time, zeros
        // past the context (an f32 cache rounded to bf16 after).
        Type element = cache.getElementType();
        auto loadChunk = [&](Value seq, Value context, Value chunk) {
          e.barrier(); // the previous chunk is read
          e.strided(
              mul(e.thread, idx(8)), idx(kChunk * headDim),
              mul(e.threads, idx(8)), [&](Value c) {
                Value r = arith::DivUIOp::create(b, loc, c, idx(headDim));
                Value d = arith::RemUIOp::create(b, loc, c, idx(headDim));
                Value p = add(chunk, r);
                Value pc = arith::MinUIOp::create(
                    b, loc, p, arith::SubIOp::create(b, loc, context, idx(1)));
                Value bs = idx(blockSize);
                Value block = e.loadIndex(
                    blockTables, {seq, arith::DivUIOp::create(b, loc, pc, bs)});
                Value slot =
                    add(mul(block, bs), arith::RemUIOp::create(b, loc, pc, bs));
                Value valid = lt(p, context);
                Value zero =
                    arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
                SmallVector<Value> kv;
                for (Value rows : {kRows, vRows})
                  for (int64_t i = 0; i < 8; ++i)
                    kv.push_back(
                        load(rows, {slot, add(kvColumn, add(d, idx(i)))}));
                Value at = add(mul(r, idx(stride)), d);
                for (int64_t i = 0; i < 16; ++i) {
                  Value x = arith::SelectOp::create(b, loc, valid, kv[i], zero);
                  if (element != bf16)
                    x = arith::TruncFOp::create(b, loc, bf16, x);
                  store(x, i < 8 ? ks : vs, {add(at, idx(i % 8))});
                }
              });
          e.barrier();
        };
        // S = Q K^T for the warp's rows, on the tensor cores.
        auto score = [&](Value warpRow) {
          w.repeat(kChunk / 8 * elements,
                   [&](Value i) { store(e.f32(0), s, {i}); });
          w.repeat(headDim / 16, [&](Value kStep) {
            Value k0 = mul(kStep, idx(16));
            w.repeat(kChunk / 8, [&](Value n) {
              w.mma(
                  s, n,
                  [&](Value r, Value k) -> Value {
                    return load(qs, {add(mul(add(warpRow, r), idx(stride)),
                                         add(k0, k))});
                  },
                  [&](Value k, Value c) -> Value {
                    Value position = add(mul(n, idx(8)), c);
                    return load(ks,
                                {add(mul(position, idx(stride)), add(k0, k))});
                  });
            });
          });
        };
        // The online softmax of each of the lane's rows over the chunk: S
        // masked and scaled, then the weights P in its place; the running
        // maximum and sum, and O, rescaled.
        auto softmax = [&](Value chunk) {
          w.repeat(ownRows, [&](Value i) {
            Value limit = arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                                     load(limits, {i}));
            Value best = w.foldRow(
                kChunk / 8, i, e.f32(negInf),
                [&](Value at, Value column, Value acc) -> Value {
                  Value scaled = arith::MulFOp::create(b, loc, load(s, {at}),
                                                       e.f32(scale));
                  Value masked = arith::SelectOp::create(
                      b, loc, lt(add(chunk, column), limit), scaled,
                      e.f32(negInf));
                  store(masked, s, {at});
                  return arith::MaximumFOp::create(b, loc, acc, masked);
                });
            Value old = load(ms, {i});
            Value fresh =
                arith::MaximumFOp::create(b, loc, old, w.rowMax(best));
            // A row that has seen nothing yet keeps weights of 0.
            Value base = arith::SelectOp::create(
                b, loc,
                arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, fresh,
                                      e.f32(negInf)),
                e.f32(0), fresh);
            Value alpha = math::ExpOp::create(
                b, loc, arith::SubFOp::create(b, loc, old, base));
            Value sum = w.foldRow(
                kChunk / 8, i, e.f32(0),
                [&](Value at, Value, Value acc) -> Value {
                  Value weight = math::ExpOp::create(
                      b, loc,
                      arith::SubFOp::create(b, loc, load(s, {at}), base));
                  store(weight, s, {at});
                  return arith::AddFOp::create(b, loc, acc, weight);
                });
            store(arith::AddFOp::create(
                      b, loc,
                      arith::MulFOp::create(b, loc, load(ls, {i}), alpha),
                      w.rowSum(sum)),
                  ls, {i});
            store(fresh, ms, {i});
            w.eachOfRow(headDim / 8, i, [&](Value at, Value) {
              store(arith::MulFOp::create(b, loc, load(o, {at}), alpha), o,
                    {at});
            });
          });
        };
        // O += P V on the tensor cores.
        auto accumulate = [&] {
          w.repeat(kChunk / 16, [&](Value kStep) {
            w.repeat(headDim / 8, [&](Value n) {
              w.mmaFromTiles(o, n, s, mul(kStep, idx(2)),
                             [&](Value k, Value c) -> Value {
                               Value position = add(mul(kStep, idx(16)), k);
                               return load(vs, {add(mul(position, idx(stride)),
                                                    add(mul(n, idx(8)), c))});
                             });
            });
          });
        };
        // 3. O / sum for the warp's rows (in pairs of columns on the GPU).
        auto writeOut = [&](Value warpRow) {
          w.repeat(ownRows, [&](Value i) {
            Value row = add(firstRow, add(warpRow, w.row(i)));
            e.when(lt(row, rowCount), [&] {
              Value t = tokenOf(row);
              Value inverse =
                  arith::DivFOp::create(b, loc, e.f32(1), load(ls, {i}));
              w.eachOfRow(headDim / 8, i, [&](Value at, Value d) {
                e.storeF32(
                    arith::MulFOp::create(b, loc, load(o, {at}), inverse),
                    outRows, {t, queryColumn(row, d)});
              });
            });
          });
        };

        // The host's one thread takes the warps in turn.
        auto warpBody = [&](Value warp) {
          Value warpRow = mul(warp, idx(kWarpRows));
          w.repeat(headDim / 8 * elements,
                   [&](Value i) { store(e.f32(0), o, {i}); });
          w.repeat(ownRows, [&](Value i) {
            store(e.f32(negInf), ms, {i});
            store(e.f32(0), ls, {i});
          });
          e.forEach(firstToken, endToken, idx(1), [&](Value start) {
            // A run starts at the block's first token and wherever the
            // sequence changes.
            Value seq = e.loadIndex(tokenSeq, {start});
            Value before = arith::SelectOp::create(
                b, loc, lt(firstToken, start),
                arith::SubIOp::create(b, loc, start, idx(1)), start);
            Value starts = arith::OrIOp::create(
                b, loc,
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, start,
                                      firstToken),
                arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                      e.loadIndex(tokenSeq, {before}), seq));
            e.when(starts, [&] {
              SmallVector<Value> run = runOf(start, seq);
              Value end = run[0], context = run[1];
              setLimits(warpRow, start, end);
              e.forEach(idx(0), context, idx(kChunk), [&](Value chunk) {
                loadChunk(seq, context, chunk);
                score(warpRow);
                softmax(chunk);
                accumulate();
              });
            });
          });
          writeOut(warpRow);
        };
        if (gpu)
          warpBody(e.warp());
        else
          e.forEach(idx(0), idx(kWarps), idx(1), warpBody);
      },
      privates);
  func::ReturnOp::create(b, loc);
  return func;
}
