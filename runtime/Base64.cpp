//===- Base64.cpp - The artifact's binary payloads ------------------------===//

#include "runtime/Base64.h"

#include <cstdint>

bool moert::decodeBase64(std::string_view text, std::string &bytes) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  if (text.size() % 4 != 0)
    return false;
  bytes.clear();
  bytes.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4], padding = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        v[j] = 0;
        ++padding;
        continue;
      }
      if (padding || (v[j] = value(c)) < 0)
        return false;
    }
    uint32_t word = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    bytes.push_back(static_cast<char>(word >> 16));
    if (padding < 2)
      bytes.push_back(static_cast<char>((word >> 8) & 0xff));
    if (padding < 1)
      bytes.push_back(static_cast<char>(word & 0xff));
  }
  return true;
}
