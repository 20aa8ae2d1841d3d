// RUN: moe-opt %s -split-input-file -moe-build-expert-kernels | FileCheck %s --check-prefix=HOST
// RUN: moe-opt %s -split-input-file -moe-build-expert-kernels='target=gpu threads=128' | FileCheck %s --check-prefix=GPU
// RUN: not moe-opt %s -split-input-file -moe-build-expert-kernels='target=tpu' 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not moe-opt %s -split-input-file -moe-build-expert-kernels='target=gpu threads=100' 2>&1 | FileCheck %s --check-prefix=THREADS
// The pass changes signatures, so kernels must have no callers left.
// RUN: not moe-opt %S/Inputs/expert-kernel-caller.mlir -moe-build-expert-kernels 2>&1 | FileCheck %s --check-prefix=CALLER
// TARGET: error: moe-build-expert-kernels: target must be host or gpu, got 'tpu'
// THREADS: error: moe-build-expert-kernels: threads must be a multiple of 32 in [32, 1024], got 100
// CALLER: error: moe-build-expert-kernels: kernel 'kernel_router' still has callers; run the pass on a module of kernels
// Numerics: host artifacts compiled with moec --grid-kernels run this code
// with one thread per block and match the reference model
// (test/unit/HostExecutionTest *_grid, PartitionedHostTest *_grid); the GPU
// form is assembled by ptxas in moec/cuda-artifact.test.

// Router: one block per token; a warp per expert score (4 warps of 128
// threads, lanes reading 8 contiguous columns of the aligned token and
// router rows at a time, summed by shuffles), then the first thread takes
// the softmax, top-2 and renormalisation.
// HOST-LABEL: func.func private @kernel_router
// HOST-SAME: (%[[X:.*]]: memref<?x64xf32>, %[[W:.*]]: memref<4x64xf32>, %[[I:.*]]: memref<?x2xi32>, %[[P:.*]]: memref<?x2xf32>)
// HOST-SAME: moe.grid_kernel
// HOST: %[[T:.*]] = memref.dim %[[X]], %c0
// HOST: memref.alloca() : memref<4xf32>
// HOST: scf.for %[[TOK:.*]] = %{{.*}} to %[[T]]
// HOST: math.exp
// HOST: memref.store %{{.*}}, %[[I]][%[[TOK]], %{{.*}}] : memref<?x2xi32>
// HOST: memref.store %{{.*}}, %[[P]][%[[TOK]], %{{.*}}] : memref<?x2xf32>
// HOST-NOT: gpu.
// GPU-LABEL: func.func private @kernel_router
// GPU: %[[T:.*]] = memref.dim %arg0, %c0
// GPU: gpu.launch blocks(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}) in (%{{[a-z0-9]+}} = %[[T]], {{[^)]*}}) threads(%[[TX:[a-z0-9]+]], %{{[a-z0-9]+}}, %{{[a-z0-9]+}}) in (%[[NT:[a-z0-9]+]] = %c128, {{[^)]*}}) workgroup(%[[SCORES:[a-z0-9]+]] : memref<4xf32, #gpu.address_space<workgroup>>)
// GPU: %[[XA:.*]] = memref.assume_alignment %arg0, 16
// GPU: %[[WA:.*]] = memref.assume_alignment %arg1, 16
// GPU: %[[WARP:.*]] = arith.divui %[[TX]], %c32
// GPU: scf.for %[[E:.*]] = %[[WARP]] to %c4{{.*}} step %c4
// GPU: memref.load %[[XA]]
// GPU: memref.load %[[WA]][%[[E]],
// GPU-COUNT-5: gpu.shuffle xor
// GPU: memref.store %{{.*}}, %[[SCORES]][%[[E]]]
// GPU: gpu.barrier
// GPU: arith.cmpi eq, %[[TX]]
// GPU: math.exp
func.func private @kernel_router(%x: tensor<?x64xf32>, %w: tensor<4x64xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {moe.kernel} {
  %i, %p = moe.router %x, %w top_k 2 normalize : (tensor<?x64xf32>, tensor<4x64xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %i, %p : tensor<?x2xi32>, tensor<?x2xf32>
}

// -----

// Dispatch: one block where the first thread counts, sums and places the
// copies; then a block per copy moves its row, 8 columns per thread.
// HOST-LABEL: func.func private @kernel_dispatch
// HOST-SAME: (%[[X:.*]]: memref<?x64xf32>, %{{.*}}: memref<?x2xi32>, %[[ROWS:.*]]: memref<?x64xf32>, %[[OFF:.*]]: memref<5xi32>, %[[PERM:.*]]: memref<?xi32>)
// HOST: memref.store %{{.*}}, %[[OFF]]
// HOST: memref.store %{{.*}}, %[[PERM]]
// HOST: %[[R:.*]] = memref.dim %[[ROWS]], %c0
// HOST: scf.for %{{.*}} = %{{.*}} to %[[R]]
// HOST-COUNT-8: memref.load %[[X]]
// HOST-COUNT-8: memref.store %{{.*}}, %[[ROWS]]
// GPU-LABEL: func.func private @kernel_dispatch
// GPU: gpu.launch blocks({{[^)]*}}) in (%{{[a-z0-9]+}} = %c1, %{{[a-z0-9]+}} = %c1, {{[^)]*}}) threads({{[^)]*}}) in (%{{[a-z0-9]+}} = %c128,
// GPU-SAME: workgroup(%{{.*}} : memref<4xi32, #gpu.address_space<workgroup>>)
// GPU: scf.if
// GPU: gpu.terminator
// GPU: %[[R:.*]] = memref.dim %arg2, %c0
// GPU: gpu.launch blocks({{[^)]*}}) in (%{{[a-z0-9]+}} = %[[R]], %{{[a-z0-9]+}} = %c1,
// GPU: memref.assume_alignment %arg0, 16
// GPU: memref.assume_alignment %arg2, 16
func.func private @kernel_dispatch(%x: tensor<?x64xf32>, %i: tensor<?x2xi32>) -> (tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>) attributes {moe.kernel} {
  %r, %o, %p = moe.dispatch %x, %i experts 4 : (tensor<?x64xf32>, tensor<?x2xi32>) -> (tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>)
  return %r, %o, %p : tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>
}

// -----

// Placed experts (this rank holds 2 of 4): gate/up then down, one warp per
// output feature of a group of 4 consecutive rows (on the GPU a butterfly
// of shuffles), an f32 scratch for act(gate) * up whose rows are the
// input's (argument 0). The block of a group's first row works, one run of
// rows of one expert at a time: each weight chunk is read once per run (4
// sums).
// HOST-LABEL: func.func private @kernel_expert_ffn
// HOST-SAME: (%[[X:.*]]: memref<?x64xf32>, %[[OFF:.*]]: memref<5xi32>, %[[GU:.*]]: memref<2x256x64xf32>, %[[D:.*]]: memref<2x64x128xf32>, %[[G:.*]]: memref<1xi32>, %[[Y:.*]]: memref<?x64xf32>, %[[H:.*]]: memref<?x128xf32>)
// HOST-SAME: moe.scratch_args = 1 : i64, moe.scratch_rows_arg = 0 : i64
// HOST: memref.load %[[G]]
// HOST: memref.load %[[GU]]
// HOST: memref.store %{{.*}}, %[[H]]
// HOST: memref.load %[[D]]
// HOST: memref.store %{{.*}}, %[[Y]]
// GPU-LABEL: func.func private @kernel_expert_ffn
// 128 gate/up features per row, 4 warps per block: 32 blocks per row.
// GPU: gpu.launch blocks(%[[R:[a-z0-9]+]], {{[^)]*}}) in (%{{[a-z0-9]+}} = %{{[a-z0-9]+}}, %{{[a-z0-9]+}} = %c32,
// GPU: arith.remui %[[R]], %c4
// GPU: arith.minui
// GPU: scf.for %{{.*}} = %[[R]] to %{{.*}} step %c1{{.*}} iter_args
// GPU: scf.if
// GPU: %{{.*}}:4 = scf.for
// GPU-COUNT-5: gpu.shuffle xor
// GPU: math.exp
// GPU: gpu.terminator
// 64 outputs per row: 16 blocks per row.
// GPU: gpu.launch blocks({{[^)]*}}) in (%{{[a-z0-9]+}} = %{{[a-z0-9]+}}, %{{[a-z0-9]+}} = %c16,
// GPU: gpu.shuffle xor
// GPU: gpu.terminator
func.func private @kernel_expert_ffn(%x: tensor<?x64xf32>, %off: tensor<5xi32>, %gu: tensor<2x256x64xf32>, %d: tensor<2x64x128xf32>, %g: tensor<1xi32>) -> tensor<?x64xf32> attributes {moe.kernel} {
  %y = moe.expert_ffn %x, %off, %gu, %d activation silu gated top_k 2 global_experts 4 expert_group %g : (tensor<?x64xf32>, tensor<5xi32>, tensor<2x256x64xf32>, tensor<2x64x128xf32>, tensor<1xi32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// The dense FFN: the same two launches with one expert.
// HOST-LABEL: func.func private @kernel_ffn
// HOST-SAME: (%{{.*}}: memref<?x64xf32>, %[[UP:.*]]: memref<96x64xf32>, %[[D:.*]]: memref<64x96xf32>, %[[GATE:.*]]: memref<96x64xf32>, %{{.*}}: memref<?x64xf32>, %[[H:.*]]: memref<?x96xf32>)
// HOST-SAME: moe.scratch_args = 1 : i64
// HOST: memref.load %[[GATE]]
// HOST: memref.load %[[UP]]
// HOST: memref.store %{{.*}}, %[[H]]
// GPU-LABEL: func.func private @kernel_ffn
// GPU: gpu.launch blocks({{[^)]*}}) in (%{{[a-z0-9]+}} = %{{[a-z0-9]+}}, %{{[a-z0-9]+}} = %c24,
// GPU: gpu.launch blocks({{[^)]*}}) in (%{{[a-z0-9]+}} = %{{[a-z0-9]+}}, %{{[a-z0-9]+}} = %c16,
func.func private @kernel_ffn(%x: tensor<?x64xf32>, %up: tensor<96x64xf32>, %down: tensor<64x96xf32>, %gate: tensor<96x64xf32>) -> tensor<?x64xf32> attributes {moe.kernel} {
  %y = moe.ffn %x up %up down %down gate %gate activation silu : (tensor<?x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>, tensor<96x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Other kernels are left alone.
// HOST-LABEL: func.func private @kernel_add
// HOST-SAME: -> tensor<?x64xf32>
// HOST: moe.add
func.func private @kernel_add(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {moe.kernel} {
  %s = moe.add %a, %b : tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}
