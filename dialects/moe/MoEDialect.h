//===- MoEDialect.h - The moe dialect ---------------------------*- C++ -*-===//
//
// Dialect, enums, attributes and types of `moe`. Ops are in MoEOps.h.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_DIALECTS_MOE_MOEDIALECT_H
#define MOEC_DIALECTS_MOE_MOEDIALECT_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/DialectImplementation.h"

#include "dialects/moe/MoEDialect.h.inc"
#include "dialects/moe/MoEEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/MoEAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/moe/MoETypes.h.inc"

#endif // MOEC_DIALECTS_MOE_MOEDIALECT_H
