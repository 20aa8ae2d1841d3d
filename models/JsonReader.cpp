//===- JsonReader.cpp - Checked reading of JSON description files ---------===//
//
// FieldReader, the document scanner behind parseDocument (syntax error
// positions, duplicate keys) and the helpers that show values in messages.
// nlohmann_json's exceptions are caught by readDocument; none leaves the
// library.
//
//===----------------------------------------------------------------------===//

#include "models/JsonReader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

using namespace moec::json;

namespace {

/// Characters of a name (FieldReader::name); of keys that paths show as
/// `.key`.
constexpr const char *kNameChars = "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
constexpr const char *kIdentifierChars =
    "abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";

/// A first pass over the text that finds what the DOM parser hides: the
/// position of the first syntax error (lost for a float overflow, which throws
/// out_of_range) and keys that occur twice in one object (silently merged).
class Scanner : public nlohmann::json_sax<Json> {
public:
  Errors duplicates;
  /// 1-based offset of the last byte read when the first error was found.
  size_t errorByte = 0;
  std::string errorMessage;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t &) override {
    return value();
  }
  bool string(string_t &) override { return value(); }
  bool binary(binary_t &) override { return value(); }
  bool start_object(size_t) override { return frames.push_back({}), true; }
  bool start_array(size_t) override {
    return frames.push_back({true, {}, {}, 0}), true;
  }
  bool end_object() override { return frames.pop_back(), value(); }
  bool end_array() override { return frames.pop_back(), value(); }
  bool key(string_t &key) override {
    frames.back().lastKey = key;
    if (!frames.back().keys.insert(key).second)
      duplicates.push_back(childPath(path(), key) +
                           ": duplicate key; a field may appear only once");
    return true;
  }
  bool parse_error(size_t byte, const std::string &,
                   const nlohmann::detail::exception &e) override {
    errorByte = byte;
    errorMessage = e.what();
    return false;
  }

private:
  /// One open object or array. Paths are built only for a duplicate, so deep
  /// nesting costs linear memory.
  struct Frame {
    bool isArray = false;
    std::set<std::string> keys;
    std::string lastKey;
    size_t nextIndex = 0;
  };
  std::vector<Frame> frames;

  /// Counts a finished array element.
  bool value() {
    if (!frames.empty() && frames.back().isArray)
      ++frames.back().nextIndex;
    return true;
  }
  /// Path of the innermost open object or array.
  std::string path() const {
    std::string path = "$";
    for (size_t i = 0; i + 1 < frames.size(); ++i)
      path = frames[i].isArray
                 ? path + "[" + std::to_string(frames[i].nextIndex) + "]"
                 : childPath(path, frames[i].lastKey);
    return path;
  }
};

/// `line L, column C: invalid JSON: <reason>` for the error the scanner found
/// in `text`. Columns count UTF-8 characters.
std::string syntaxError(std::string_view text, const Scanner &scanner) {
  size_t end =
      std::min(scanner.errorByte - (scanner.errorByte > 0), text.size());
  size_t line = 1, column = 1;
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n')
      line += 1, column = 1;
    else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
      ++column;
  }
  // The message is "[json.exception.parse_error.101] parse error at line 1,
  // column 2: syntax error while parsing value - invalid literal; last read:
  // 'tx'; expected ...", or "[json.exception.out_of_range.406] number
  // overflow parsing '1e400'": keep the reason, without the "last read".
  std::string reason = scanner.errorMessage;
  size_t dash = reason.find(" - "), bracket = reason.find("] ");
  if (dash != std::string::npos || bracket != std::string::npos)
    reason.erase(0, dash != std::string::npos ? dash + 3 : bracket + 2);
  if (size_t at = reason.find("; last read: '"); at != std::string::npos) {
    size_t after = reason.find("'; expected ", at);
    reason.erase(at, after == std::string::npos ? after : after + 1 - at);
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column) +
         ": invalid JSON: " + (reason.empty() ? "syntax error" : reason);
}

} // namespace

//===----------------------------------------------------------------------===//
// Showing values
//===----------------------------------------------------------------------===//

std::string moec::json::dumpCompact(const Json &value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string moec::json::shorten(std::string text) {
  if (text.size() <= kMaxShownValue)
    return text;
  size_t cut = kMaxShownValue - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  return text.substr(0, cut) + "...";
}

std::string moec::json::describe(const Json &value) {
  if (value.is_object() || value.is_array())
    return value.is_object() ? "an object" : "an array";
  if (value.is_string())
    return "a string " + shorten(dumpCompact(value));
  return (value.is_boolean() ? "a boolean " : "") + shorten(dumpCompact(value));
}

std::string moec::json::showValue(const Json &value) {
  return value.is_string() ? shorten(dumpCompact(value)) : describe(value);
}

std::string moec::json::childPath(const std::string &path,
                                  std::string_view key) {
  if (!key.empty() && !(key[0] >= '0' && key[0] <= '9') &&
      key.find_first_not_of(kIdentifierChars) == std::string_view::npos)
    return path + "." + std::string(key);
  return path + "[" + shorten(dumpCompact(Json(std::string(key)))) + "]";
}

std::string moec::json::formatNumber(double value) {
  constexpr double kExact = 9007199254740992.0; // 2^53
  if (std::isfinite(value) && value == std::floor(value) &&
      std::fabs(value) < kExact)
    return std::to_string(static_cast<int64_t>(value));
  return dumpCompact(Json(value));
}

std::string moec::json::formatLimit(int64_t value) {
  if (value >= 1024 && (value & (value - 1)) == 0) {
    int exponent = 0;
    while ((int64_t(1) << exponent) != value)
      ++exponent;
    return "2^" + std::to_string(exponent);
  }
  return std::to_string(value);
}

size_t moec::json::editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0]; // distance(a[0, i-1), b[0, j-1))
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = diagonal + (a[i - 1] != b[j - 1]);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

//===----------------------------------------------------------------------===//
// FieldReader
//===----------------------------------------------------------------------===//

void FieldReader::error(std::string_view key, const std::string &message) {
  errors->push_back(pathOf(key) + ": " + message);
}

const Json *FieldReader::get(const char *key, bool required,
                             const std::string &expected) {
  known.push_back(key);
  auto it = object->find(key);
  if (it != object->end())
    return &*it;
  if (required)
    error(key, "missing required field (expected " + expected + ")");
  return nullptr;
}

std::nullopt_t FieldReader::fail(const char *key, const std::string &expected,
                                 const std::string &shown) {
  error(key, "expected " + expected + ", got " + shown);
  return std::nullopt;
}

std::optional<int64_t> FieldReader::integer(const char *key, bool required,
                                            int64_t minimum, int64_t maximum) {
  std::string expected = minimum == 1
                             ? "a positive integer"
                             : "an integer >= " + std::to_string(minimum);
  const Json *value = get(key, required, expected);
  if (!value)
    return std::nullopt;
  bool tooLarge = value->is_number_unsigned() &&
                  value->get<uint64_t>() > uint64_t(maximum);
  if (tooLarge)
    return fail(key, expected + " (at most " + formatLimit(maximum) + ")",
                describe(*value));
  if (!value->is_number_integer() || value->get<int64_t>() < minimum)
    return fail(key, expected, describe(*value));
  return value->get<int64_t>();
}

std::optional<double> FieldReader::number(const char *key, bool required,
                                          const NumberRange &range) {
  const Json *value = get(key, required, range.expected);
  if (!value)
    return std::nullopt;
  if (!value->is_number())
    return fail(key, range.expected, describe(*value));
  double x = value->get<double>();
  if (!(range.includeLow ? x >= range.low : x > range.low))
    return fail(key, range.expected, describe(*value));
  if (range.high && !(range.includeHigh ? x <= *range.high : x < *range.high))
    return fail(key,
                range.highText.empty()
                    ? range.expected
                    : range.expected + " (at most " + range.highText + ")",
                describe(*value));
  return x;
}

std::optional<bool> FieldReader::boolean(const char *key) {
  const Json *value = get(key, false, "a boolean");
  if (value && !value->is_boolean())
    return fail(key, "a boolean", describe(*value));
  return value ? std::optional<bool>(value->get<bool>()) : std::nullopt;
}

std::optional<std::string> FieldReader::string(const char *key,
                                               bool required) {
  const Json *value = get(key, required, "a string");
  if (value && !value->is_string())
    return fail(key, "a string", describe(*value));
  return value ? std::optional<std::string>(value->get<std::string>())
               : std::nullopt;
}

std::optional<std::string> FieldReader::name(const char *key, bool required) {
  std::optional<std::string> name = string(key, required);
  if (!name || (!name->empty() &&
                name->find_first_not_of(kNameChars) == std::string::npos))
    return name;
  error(key, "expected a non-empty string of letters, digits, '.', '_' and "
             "'-', got " +
                 showValue(Json(*name)));
  return std::nullopt;
}

std::optional<FieldReader> FieldReader::child(const char *key, bool required,
                                              bool nullable) {
  std::string expected = nullable ? "an object or null" : "an object";
  const Json *value = get(key, required, expected);
  if (!value || (nullable && value->is_null()))
    return std::nullopt;
  if (!value->is_object())
    return fail(key, expected, describe(*value));
  return FieldReader(*value, pathOf(key), *errors);
}

void FieldReader::forbid(const char *key, const std::string &reason) {
  forbidden.insert(key);
  if (object->contains(key))
    error(key, reason);
}

void FieldReader::reportUnknownFields() {
  for (auto it = object->begin(); it != object->end(); ++it) {
    const std::string &key = it.key();
    if (std::find(known.begin(), known.end(), key) != known.end() ||
        forbidden.count(key))
      continue;
    std::string message = "unknown field; expected one of ";
    std::string suggestion;
    size_t best = 3;
    for (size_t i = 0; i < known.size(); ++i) {
      message += (i ? ", " : "") + known[i];
      if (size_t distance = editDistance(key, known[i]); distance < best)
        best = distance, suggestion = known[i];
    }
    if (!suggestion.empty())
      message += " (did you mean \"" + suggestion + "\"?)";
    error(key, message);
  }
}

//===----------------------------------------------------------------------===//
// Documents and files
//===----------------------------------------------------------------------===//

std::optional<Json> moec::json::parseDocument(std::string_view text,
                                              Errors &errors) {
  Scanner scanner;
  if (!Json::sax_parse(text.begin(), text.end(), &scanner)) {
    errors.push_back(syntaxError(text, scanner));
    return std::nullopt;
  }
  errors.insert(errors.end(), scanner.duplicates.begin(),
                scanner.duplicates.end());
  Json root = Json::parse(text.begin(), text.end());
  if (!root.is_object()) {
    errors.push_back("$: expected a JSON object, got " + describe(root));
    return std::nullopt;
  }
  return root;
}

void moec::json::appendQuietly(
    Errors &errors, std::initializer_list<std::string_view> parts) noexcept {
  try {
    std::string message;
    for (std::string_view part : parts)
      message += part;
    errors.push_back(std::move(message));
  } catch (...) {
  }
}

std::optional<std::string> moec::json::readTextFile(const std::string &path,
                                                    Errors &errors) noexcept {
  try {
    std::FILE *file = std::fopen(path.c_str(), "rb");
    int error = errno;
    std::string text;
    if (file) {
      char buffer[1 << 16];
      size_t count;
      while ((count = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
        text.append(buffer, count);
      error = std::ferror(file) ? errno : 0;
      std::fclose(file);
    }
    if (error != 0) {
      errors.push_back("cannot read '" + path + "': " + std::strerror(error));
      return std::nullopt;
    }
    return text;
  } catch (...) {
    appendQuietly(errors, {"cannot read '", path, "': out of memory"});
    return std::nullopt;
  }
}
