// RUN: moe-opt %s -split-input-file -moe-build-row-kernels | FileCheck %s --check-prefix=HOST
// RUN: moe-opt %s -split-input-file -moe-build-row-kernels='target=gpu threads=128' | FileCheck %s --check-prefix=GPU
// RUN: not moe-opt %s -split-input-file -moe-build-row-kernels='target=tpu' 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not moe-opt %s -split-input-file -moe-build-row-kernels='threads=2000' 2>&1 | FileCheck %s --check-prefix=THREADS
// THREADS: error: moe-build-row-kernels: threads must be in [1, 1024], got 2000
// The pass changes signatures, so kernels must have no callers left.
// RUN: not moe-opt %S/Inputs/row-kernel-caller.mlir -moe-build-row-kernels 2>&1 | FileCheck %s --check-prefix=CALLER
// CALLER: error: moe-build-row-kernels: kernel 'kernel_add' still has callers; run the pass on a module of kernels
// Rows wider than the shared-memory limit go to global scratch arguments.
// RUN: moe-opt %s -split-input-file -moe-build-row-kernels='shared-memory-limit=0' | FileCheck %s --check-prefix=SCRATCH
// Numerics: the host artifacts compiled with --grid-kernels match the
// reference model (test/unit/HostExecutionTest, *_grid, *_grid_scratch);
// the GPU form is assembled by ptxas in codegen/gpu-row-kernels.mlir.
// SCRATCH-LABEL: func.func private @kernel_add_rms_norm
// SCRATCH-NOT: moe.scratch_args
// SCRATCH-LABEL: func.func private @kernel_combine_add_rms_norm_gather_tokens
// The two intermediate rows: [token rows (of the routing weights, argument
// 2), 64] f32.
// SCRATCH-SAME: %[[OUT:.*]]: memref<?x64xf32>, %[[S0:.*]]: memref<?x64xf32>, %[[S1:.*]]: memref<?x64xf32>)
// SCRATCH-SAME: moe.scratch_args = 2 : i64, moe.scratch_rows_arg = 2 : i64
// SCRATCH-NOT: memref.alloca
// SCRATCH: memref.store %{{.*}}, %[[S0]][%{{.*}}, %{{.*}}]

// Residual add + RMSNorm: results become out-parameters; one row at a time,
// the columns strided by the threads, the sum of squares reduced over the
// block, a barrier after each op.
// HOST-LABEL: func.func private @kernel_add_rms_norm
// HOST-SAME: (%[[A:.*]]: memref<?x64xf32>, %[[B:.*]]: memref<?x64xf32>, %[[W:.*]]: memref<64xf32>, %[[S:.*]]: memref<?x64xf32>, %[[N:.*]]: memref<?x64xf32>)
// HOST-SAME: moe.row_kernel
// HOST: %[[ROWS:.*]] = memref.dim %[[S]], %c0
// HOST: scf.for %[[R:.*]] = %{{.*}} to %[[ROWS]]
// HOST: scf.for %[[C:.*]] =
// HOST: memref.store %{{.*}}, %[[S]][%[[R]], %[[C]]]
// HOST: scf.for {{.*}} iter_args
// HOST: math.rsqrt
// HOST: memref.store %{{.*}}, %[[N]][%[[R]], %{{.*}}]
// HOST-NOT: gpu.
// GPU-LABEL: func.func private @kernel_add_rms_norm
// GPU: gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%[[NT:.*]] = %c128
// The runtime's buffers are 16-byte aligned; each thread takes 8
// contiguous columns at a time, loading all of them before storing any, so
// LLVM can merge them into 16-byte accesses (codegen/gpu-row-kernels.mlir).
// GPU: %[[A:.*]] = memref.assume_alignment %arg0, 16
// GPU: %[[START:.*]] = arith.muli %[[TX]], %c8
// GPU: %[[STEP:.*]] = arith.muli %[[NT]], %c8
// GPU: scf.for %[[C:.*]] = %[[START]] to %c64 step %[[STEP]]
// GPU: memref.load %[[A]][%{{.*}}, %[[C]]]
// GPU: %[[C7:.*]] = arith.addi %[[C]], %c7
// GPU: memref.load %[[A]][%{{.*}}, %[[C7]]]
// GPU-NEXT: memref.load
// GPU-NEXT: arith.addf
// GPU-NEXT: memref.store %{{.*}}, %{{.*}}[%{{.*}}, %[[C]]]
// GPU: gpu.barrier
// GPU: %[[P:.*]] = scf.for
// GPU: gpu.all_reduce add %[[P]] uniform
// GPU: math.rsqrt
// GPU: gpu.barrier
// GPU: gpu.terminator
func.func private @kernel_add_rms_norm(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>, %w: tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) attributes {moe.kernel} {
  %s = moe.add %a, %b : tensor<?x64xf32>
  %n = moe.rms_norm %s, %w eps = 1.0e-5 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %s, %n : tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// Combine + add + norm + the final gather: the rows computed are the R
// gathered ones (row r reads token rows[r]); the intermediate rows live in
// a stack buffer (host) or workgroup memory (GPU).
// HOST-LABEL: func.func private @kernel_combine_add_rms_norm_gather_tokens
// HOST-SAME: %[[ROWS:arg[0-9]+]]: memref<?xi32>, %[[OUT:arg[0-9]+]]: memref<?x64xf32>)
// Two buffers: the combine result is dead once the add read it, so the
// norm reuses its buffer.
// HOST-COUNT-2: memref.alloca() : memref<64xf32>
// HOST-NOT: memref.alloca
// HOST: scf.for %[[R:.*]] =
// HOST: %[[T:.*]] = memref.load %[[ROWS]][%[[R]]]
// HOST: arith.index_cast %[[T]]
// HOST: memref.store %{{.*}}, %[[OUT]][%[[R]], %{{.*}}]
// GPU-LABEL: func.func private @kernel_combine_add_rms_norm_gather_tokens
// GPU: gpu.launch
// GPU-SAME: workgroup(%{{.*}} : memref<64xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<64xf32, #gpu.address_space<workgroup>>) {
func.func private @kernel_combine_add_rms_norm_gather_tokens(%eo: tensor<?x64xf32>, %perm: tensor<?xi32>, %pw: tensor<?x2xf32>, %res: tensor<?x64xf32>, %w: tensor<64xf32>, %rows: tensor<?xi32>) -> tensor<?x64xf32> attributes {moe.kernel} {
  %c = moe.combine %eo, %perm, %pw : (tensor<?x64xf32>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x64xf32>
  %s = moe.add %res, %c : tensor<?x64xf32>
  %n = moe.rms_norm %s, %w eps = 1.0e-5 : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %g = moe.gather_tokens %n, %rows : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %g : tensor<?x64xf32>
}

// -----

// Kernels that are not row-wise stay as they are.
// HOST-LABEL: func.func private @kernel_dispatch
// HOST-SAME: -> (tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>)
// HOST-NEXT: moe.dispatch
func.func private @kernel_dispatch(%x: tensor<?x64xf32>, %i: tensor<?x2xi32>) -> (tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>) attributes {moe.kernel} {
  %p, %o, %q = moe.dispatch %x, %i experts 4 : (tensor<?x64xf32>, tensor<?x2xi32>) -> (tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>)
  return %p, %o, %q : tensor<?x64xf32>, tensor<5xi32>, tensor<?xi32>
}

// TARGET: error: moe-build-row-kernels: target must be host or gpu, got 'tpu'
