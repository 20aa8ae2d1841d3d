//===- HalfFloatTest.cpp - bf16 and IEEE half conversions -----------------===//
//
// Every 16-bit pattern of both formats, against values computed here from
// the formats' definitions, and rounding checked at every midpoint between
// neighbouring values (ties to even, one float ulp either side decides).
//
//===----------------------------------------------------------------------===//

#include "runtime/HalfFloat.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace moert;

namespace {

uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
float fromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// The value of IEEE half `h` by its definition (non-NaN).
double halfValue(uint16_t h) {
  double sign = (h & 0x8000) ? -1.0 : 1.0;
  int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  if (exponent == 0x1f)
    return sign * std::numeric_limits<double>::infinity();
  if (exponent == 0)
    return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

bool isHalfNaN(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
bool isBF16NaN(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f); }

} // namespace

TEST(HalfFloat, EveryHalfWidensExactlyAndRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t bits = static_cast<uint16_t>(h);
    float value = halfToFloat(bits);
    if (isHalfNaN(bits)) {
      EXPECT_TRUE(std::isnan(value)) << std::hex << h;
      EXPECT_TRUE(isHalfNaN(floatToHalf(value))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(value), halfValue(bits)) << std::hex << h;
    ASSERT_EQ(floatToHalf(value), bits) << std::hex << h;
  }
}

TEST(HalfFloat, HalfRoundsToNearestEven) {
  // Between each pair of neighbouring positive finite halves (subnormals
  // included) and their negatives.
  for (uint16_t low = 0; low < 0x7bff; ++low) {
    uint16_t high = low + 1;
    float mid = static_cast<float>((halfValue(low) + halfValue(high)) / 2);
    uint16_t even = (low & 1) ? high : low;
    for (uint16_t sign : {uint16_t(0), uint16_t(0x8000)}) {
      float s = sign ? -1.0f : 1.0f;
      ASSERT_EQ(floatToHalf(s * mid), even | sign) << std::hex << low;
      ASSERT_EQ(floatToHalf(s * std::nextafter(mid, 0.0f)), low | sign)
          << std::hex << low;
      ASSERT_EQ(floatToHalf(s * std::nextafter(mid, 1e9f)), high | sign)
          << std::hex << low;
    }
  }
  // Past the largest half (65504) by half an ulp or more: infinity.
  EXPECT_EQ(floatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(floatToHalf(-1e10f), 0xfc00);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  // Half of the smallest subnormal (2^-25) is a tie, to zero; above, up.
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(floatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(floatToHalf(-std::ldexp(1.0f, -30)), 0x8000);
}

TEST(HalfFloat, EveryBF16WidensExactlyAndRoundTrips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    uint16_t bits = static_cast<uint16_t>(b);
    float value = bf16ToFloat(bits);
    ASSERT_EQ(bitsOf(value), b << 16) << std::hex << b;
    if (isBF16NaN(bits))
      EXPECT_TRUE(isBF16NaN(floatToBF16(value))) << std::hex << b;
    else
      ASSERT_EQ(floatToBF16(value), bits) << std::hex << b;
  }
}

TEST(HalfFloat, BF16RoundsToNearestEven) {
  for (uint32_t b = 0; b < 0x7f7f; ++b) {
    for (uint32_t sign : {0u, 0x8000u}) {
      // The float halfway between bf16 b and b + 1, and its neighbours.
      uint32_t mid = ((b | sign) << 16) + 0x8000;
      uint16_t even = static_cast<uint16_t>(((b & 1) ? b + 1 : b) | sign);
      ASSERT_EQ(floatToBF16(fromBits(mid)), even) << std::hex << b;
      ASSERT_EQ(floatToBF16(fromBits(mid - 1)), b | sign) << std::hex << b;
      ASSERT_EQ(floatToBF16(fromBits(mid + 1)), (b + 1) | sign)
          << std::hex << b;
    }
  }
  // The largest bf16 rounds up to infinity past its half ulp.
  EXPECT_EQ(floatToBF16(fromBits(0x7f7f8000)), 0x7f80);
  EXPECT_EQ(floatToBF16(fromBits(0x7f7f7fff)), 0x7f7f);
  // A NaN whose payload lies only in the dropped bits stays a NaN.
  EXPECT_TRUE(isBF16NaN(floatToBF16(fromBits(0x7f800001))));
  EXPECT_TRUE(isBF16NaN(floatToBF16(fromBits(0xff800001))));
}
