//===- Base64.h - The artifact's binary payloads ----------------*- C++ -*-===//
//
// The artifact carries the host object and the cubins as standard base64
// (RFC 4648, with padding); the runtime decodes them strictly.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_BASE64_H
#define MOEC_RUNTIME_BASE64_H

#include <string>
#include <string_view>

namespace moert {

/// Decodes standard base64 with padding into `bytes`; false on any other
/// character, a length that is not a multiple of 4, or misplaced padding.
bool decodeBase64(std::string_view text, std::string &bytes);

} // namespace moert

#endif // MOEC_RUNTIME_BASE64_H
