//===- MoEOps.h - Ops of the moe dialect ------------------------*- C++ -*-===//

#ifndef MOEC_DIALECTS_MOE_MOEOPS_H
#define MOEC_DIALECTS_MOE_MOEOPS_H

#include "dialects/moe/MoEDialect.h"
#include "dialects/moe/MoEInterfaces.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "dialects/moe/MoEOps.h.inc"

#endif // MOEC_DIALECTS_MOE_MOEOPS_H
