// RUN: moe-opt %s -moe-copies-to-linalg | FileCheck %s

// CHECK-LABEL: func.func @copies
// CHECK-SAME: (%[[A:.*]]: memref<?x8xf32>, %[[B:.*]]: memref<?x8xf32>, %[[S:.*]]: memref<4xi32, strided<[2]>>, %[[D:.*]]: memref<4xi32>)
// CHECK: linalg.copy ins(%[[A]] : memref<?x8xf32>) outs(%[[B]] : memref<?x8xf32>)
// CHECK: linalg.copy ins(%[[S]] : memref<4xi32, strided<[2]>>) outs(%[[D]] : memref<4xi32>)
// CHECK-NOT: memref.copy
func.func @copies(%a: memref<?x8xf32>, %b: memref<?x8xf32>, %s: memref<4xi32, strided<[2]>>, %d: memref<4xi32>) {
  memref.copy %a, %b : memref<?x8xf32> to memref<?x8xf32>
  memref.copy %s, %d : memref<4xi32, strided<[2]>> to memref<4xi32>
  return
}
