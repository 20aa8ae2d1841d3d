//===- HalfFloat.h - bf16 and IEEE half on the host -------------*- C++ -*-===//
//
// Conversions between f32 and the 16-bit float formats the plans use, with
// round-to-nearest-even, for weights uploaded to a device and activations
// staged through the host.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_HALFFLOAT_H
#define MOEC_RUNTIME_HALFFLOAT_H

#include <cstdint>

namespace moert {

/// bf16 bits to f32 (exact).
float bf16ToFloat(uint16_t bits);
/// IEEE half bits to f32 (exact).
float halfToFloat(uint16_t bits);
/// f32 to bf16 bits, rounding to nearest even (NaN stays NaN).
uint16_t floatToBF16(float value);
/// f32 to IEEE half bits, rounding to nearest even (overflow: infinity).
uint16_t floatToHalf(float value);

} // namespace moert

#endif // MOEC_RUNTIME_HALFFLOAT_H
