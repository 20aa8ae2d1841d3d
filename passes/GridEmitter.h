//===- GridEmitter.h - Kernels written for a grid of blocks -----*- C++ -*-===//
//
// moec's GPU kernels are written once, as the code of one thread block of a
// grid: a thread index, the block size, block-wide and warp-wide reductions
// and barriers. For the GPU the code becomes a `gpu.launch`; for the host it
// becomes loops over the grid with one thread per block (a reduction is the
// thread's own value, a barrier is nothing), so the GPU code's logic runs,
// and is checked against the reference model, on any machine.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_GRIDEMITTER_H
#define MOEC_PASSES_GRIDEMITTER_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {

/// Builds the code of one block. `b` keeps its insertion point between
/// calls; the loop and branch helpers move it into their bodies for the
/// duration of the callback.
struct GridEmitter {
  OpBuilder &b;
  Location loc;
  /// GPU code (gpu.launch) or host code (one thread per block).
  bool gpu;
  /// This thread's index in the block and the block size.
  Value thread, threads;

  /// Lanes of a warp: 32 on the GPU, 1 on the host.
  int64_t lanes() const { return gpu ? 32 : 1; }

  Value index(int64_t value);
  Value f32(double value);
  Value i32(int32_t value);

  /// memref[at] widened to f32; `value` rounded to the memref's element
  /// type and stored.
  Value loadF32(Value memref, ValueRange at);
  void storeF32(Value value, Value memref, ValueRange at);
  /// memref[at] (an i32) as an index.
  Value loadIndex(Value memref, ValueRange at);

  /// for (i = lower; i < upper; i += step) body(i)
  void forEach(Value lower, Value upper, Value step,
               function_ref<void(Value)> body);
  /// The same with loop-carried values: body returns the next ones; the
  /// results are the final ones.
  SmallVector<Value>
  loop(Value lower, Value upper, Value step, ValueRange init,
       function_ref<SmallVector<Value>(Value, ValueRange)> body);
  /// if (condition) then() else otherwise(), each returning the results.
  SmallVector<Value> ifElse(Value condition,
                            function_ref<SmallVector<Value>()> then,
                            function_ref<SmallVector<Value>()> otherwise);
  /// if (condition) then()
  void when(Value condition, function_ref<void()> then);
  /// if (thread == 0) then()
  void onFirstThread(function_ref<void()> then);

  /// for (i = start; i < upper; i += stride) body(i): the block's threads
  /// (start = thread, stride = threads) or a warp's lanes.
  void strided(Value start, Value upper, Value stride,
               function_ref<void(Value)> body);
  /// Sum of term(i) over i = start, start + stride, ... < upper (f32).
  Value stridedSum(Value start, Value upper, Value stride,
                   function_ref<Value(Value)> term);
  /// Elements a thread reads at a time from rows `length` long: 8
  /// contiguous ones (16 bytes of bf16) when `length` is a multiple of 8,
  /// else 1.
  static int64_t chunkOf(int64_t length) { return length % 8 == 0 ? 8 : 1; }
  /// for (c = thread * V; c < length; c += threads * V)
  ///   body(c, c + 1, ..., c + V - 1), V = chunkOf(length): the block's
  /// threads over a row in chunks of contiguous columns. A body that loads
  /// a whole chunk before storing it gets 16-byte accesses on aligned
  /// buffers.
  void chunks(int64_t length, function_ref<void(ArrayRef<Value>)> body);
  /// This thread's warp in the block and lane in the warp (host: 0, 0).
  Value warp();
  Value lane();
  /// One of `workers` threads' parts of `count` dot products that share an
  /// operand: sum over c < length of left(i, c) * right(c), for i < count.
  /// Worker `worker` takes chunks of chunkOf(length) contiguous columns,
  /// `workers` chunks apart, reading each chunk of `right` once for all
  /// `count` products and loading a chunk before its arithmetic (so the GPU
  /// code vectorises the loads of aligned buffers). Sum the workers' parts
  /// to get the products.
  SmallVector<Value> chunkedDots(Value worker, int64_t workers,
                                 int64_t length, int64_t count,
                                 function_ref<Value(int64_t, Value)> left,
                                 function_ref<Value(Value)> right);
  /// `memref` with its start assumed 16-byte aligned (GPU; the runtime
  /// allocates every buffer so), letting 16-byte accesses through; the
  /// memref itself on the host. Call it inside the launch body.
  Value aligned(Value memref);

  /// The block-wide reduction of `value`, every thread getting the result.
  Value blockReduce(Value value, gpu::AllReduceOperation operation);
  /// The sum of `value` over the lanes of this thread's warp (butterfly
  /// shuffles), every lane getting the result.
  Value warpSum(Value value);
  /// The maximum of `value` over the lanes of this thread's warp.
  Value warpMax(Value value);
  /// All threads of the block wait here (GPU only).
  void barrier();
};

/// Emits a grid of gridX x gridY blocks of `threads` threads (the host:
/// one), whose blocks run `body` with their block indices and one buffer of
/// block-shared memory per `shared` type (1-d, static), followed by one
/// thread-private buffer per `privates` type (GPU: private attributions,
/// registers when every access has a constant index; host: one buffer for
/// the one thread).
void emitGrid(OpBuilder &b, Location loc, bool gpu, Value gridX, Value gridY,
              int64_t threads, ArrayRef<MemRefType> shared,
              function_ref<void(GridEmitter &, Value blockX, Value blockY,
                                ArrayRef<Value> buffers)>
                  body,
              ArrayRef<MemRefType> privates = {});

} // namespace mlir::moe

#endif // MOEC_PASSES_GRIDEMITTER_H
