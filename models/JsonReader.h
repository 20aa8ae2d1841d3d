//===- JsonReader.h - Checked reading of JSON description files -*- C++ -*-===//
//
// Internal to the models library: the machinery shared by the readers of the
// model description (ModelConfig.cpp) and cluster description
// (ClusterConfig.cpp) formats. It turns a JSON text into messages of the form
//   `<json path>: <what was expected>[, got <what was found>]`
// (documented in models/README.md, "Error messages"), collecting every problem
// of a file in one pass. Built with exceptions; readDocument and readTextFile
// catch everything, the other functions may throw std::bad_alloc only.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_MODELS_JSONREADER_H
#define MOEC_MODELS_JSONREADER_H

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moec::json {

/// A JSON value. Objects keep their document order, so that unknown fields
/// are reported in the order they were written and writers emit keys in the
/// documented order.
using Json = nlohmann::ordered_json;
/// Messages, one per problem, in the order found.
using Errors = std::vector<std::string>;

/// Largest integer FieldReader::integer accepts by default. Larger values are
/// certainly typos, and the limit keeps products of a few dimensions far from
/// int64_t overflow.
constexpr int64_t kMaxInteger = int64_t(1) << 40;

/// Longest value shown after ", got " before it is cut with "...".
constexpr size_t kMaxShownValue = 60;

/// A name of an enum value in a JSON format, paired with the value.
template <typename T> using Names = std::pair<const char *, T>;

/// The JSON name of `value` in `table`, or "unknown".
template <typename T, size_t N>
std::string_view nameOf(const Names<T> (&table)[N], T value) {
  for (const auto &entry : table)
    if (entry.second == value)
      return entry.first;
  return "unknown";
}

/// One-line JSON text of `value`; invalid UTF-8 is replaced, never thrown on.
std::string dumpCompact(const Json &value);

/// Cuts `text` to kMaxShownValue bytes (at a UTF-8 character boundary),
/// ending it with "...".
std::string shorten(std::string text);

/// How a value found in the file is shown after ", got ": numbers and null as
/// themselves, strings and booleans with their type name in front (`a string
/// "4096"`, `a boolean true`), objects and arrays by their type name only.
std::string describe(const Json &value);

/// A value that has the right type but is not allowed: strings as JSON text
/// (`"swish"`), anything else as describe() shows it.
std::string showValue(const Json &value);

/// `path` extended by the object key `key`: `$.a.key`, or `$.a["odd key"]`
/// when the key is not a plain identifier.
std::string childPath(const std::string &path, std::string_view key);

/// A number as people write it: integral values below 2^53 without a
/// fraction (`40`, `-3`), others in the shortest form that reads back exactly
/// (`19.5`, `1e-05`).
std::string formatNumber(double value);

/// `2^k` for a power of two of at least 2^10, else the decimal digits.
std::string formatLimit(int64_t value);

/// Levenshtein distance (insertions, deletions and substitutions).
size_t editDistance(std::string_view a, std::string_view b);

/// The numbers a number field accepts and how messages describe them.
struct NumberRange {
  /// Names the accepted values after "expected ", e.g. "a positive number".
  std::string expected;
  /// Lower bound, excluded unless `includeLow`.
  double low = 0;
  bool includeLow = false;
  /// Upper bound, if any, excluded unless `includeHigh`.
  std::optional<double> high;
  bool includeHigh = false;
  /// When not empty, a value above `high` is reported as expecting
  /// `<expected> (at most <highText>)`, as integers above their limit are.
  std::string highText;
};

/// Reads the fields of one JSON object. Each accessor records its key as
/// known, reports problems as `<path>.<key>: ...` into the shared error list,
/// and returns std::nullopt for an absent or invalid value, so that the caller
/// falls back to the default and reading goes on to find further problems.
/// Call reportUnknownFields() after the last accessor.
class FieldReader {
public:
  /// Reads `object` (which must be a JSON object), found at `path` (`$` for
  /// the root), reporting into `errors`. Both must outlive the reader.
  FieldReader(const Json &object, std::string path, Errors &errors)
      : object(&object), path(std::move(path)), errors(&errors) {}

  /// The path of field `key` of this object, as messages show it.
  std::string pathOf(std::string_view key) const {
    return childPath(path, key);
  }

  /// Whether the object has `key`, whatever its value. Does not count as
  /// asking for the key.
  bool has(const char *key) const { return object->contains(key); }

  /// Reports `<path>.<key>: <message>`.
  void error(std::string_view key, const std::string &message);

  /// Returns the value of `key`, or nullptr when it is absent; an absent
  /// required field is reported as `missing required field (expected
  /// <expected>)`.
  const Json *get(const char *key, bool required, const std::string &expected);

  /// Reports `<path>.<key>: expected <expected>, got <shown>`.
  std::nullopt_t fail(const char *key, const std::string &expected,
                      const std::string &shown);

  /// Reads an integer in [minimum, maximum]; rejects floats, strings and
  /// booleans. Expects "a positive integer" for minimum 1, else "an integer
  /// >= <minimum>"; a value above `maximum` adds "(at most <maximum>)".
  std::optional<int64_t> integer(const char *key, bool required,
                                 int64_t minimum = 1,
                                 int64_t maximum = kMaxInteger);

  /// Reads a number (integer or float) in `range`.
  std::optional<double> number(const char *key, bool required,
                               const NumberRange &range);

  /// Reads an optional `true` or `false`.
  std::optional<bool> boolean(const char *key);

  /// Reads a string.
  std::optional<std::string> string(const char *key, bool required);

  /// Reads a non-empty string of letters, digits, '.', '_' and '-' (the
  /// characters allowed in file and artifact names).
  std::optional<std::string> name(const char *key, bool required);

  /// Reads a string that must be one of the names in `table`.
  template <typename T, size_t N>
  std::optional<T> oneOf(const char *key, bool required,
                         const Names<T> (&table)[N]) {
    std::string expected = "one of ";
    for (size_t i = 0; i < N; ++i)
      expected += (i ? ", \"" : "\"") + std::string(table[i].first) + "\"";
    const Json *value = get(key, required, expected);
    if (!value)
      return std::nullopt;
    if (value->is_string())
      for (const auto &entry : table)
        if (value->template get_ref<const std::string &>() == entry.first)
          return entry.second;
    return fail(key, expected, showValue(*value));
  }

  /// Returns a reader for the object at `key`, or std::nullopt when it is
  /// absent, null (where `nullable`) or not an object (reported).
  std::optional<FieldReader> child(const char *key, bool required,
                                   bool nullable = false);

  /// Reports `key`, if present, as not allowed here, `reason` saying where it
  /// is. The key is not offered as a known field in unknown-field messages.
  void forbid(const char *key, const std::string &reason);

  /// Reports every key of the object that no accessor asked for, listing the
  /// known ones and suggesting the nearest within two edits.
  void reportUnknownFields();

private:
  const Json *object;
  std::string path;
  Errors *errors;
  /// Keys asked for, in the order asked (the documented order).
  std::vector<std::string> known;
  std::set<std::string> forbidden;
};

/// Parses `text` as a document whose root must be an object. Reports the
/// first syntax error as `line L, column C: invalid JSON: <reason>` (columns
/// count UTF-8 characters) and then nothing else, every key that occurs twice
/// in one object as `<path>: duplicate key; a field may appear only once`, and
/// a root that is not an object as `$: expected a JSON object, got ...`.
/// Returns the root unless it is missing or not an object.
std::optional<Json> parseDocument(std::string_view text, Errors &errors);

/// Appends the concatenation of `parts` unless that throws (out of memory):
/// for catch blocks, from which nothing may escape.
void appendQuietly(Errors &errors,
                   std::initializer_list<std::string_view> parts) noexcept;

/// Parses `text` with parseDocument and reads the root with `read(root,
/// errors)`, which returns a T. Returns it when no message was produced;
/// otherwise appends the messages to `errors` and returns std::nullopt. An
/// exception (out of memory) becomes the message `$: cannot parse: <what>`.
template <typename T, typename ReadFn>
std::optional<T> readDocument(std::string_view text, Errors &errors,
                              ReadFn read) noexcept {
  try {
    Errors found;
    std::optional<T> result;
    if (std::optional<Json> root = parseDocument(text, found))
      result = read(static_cast<const Json &>(*root), found);
    errors.insert(errors.end(), found.begin(), found.end());
    if (found.empty())
      return result;
  } catch (const std::exception &e) {
    appendQuietly(errors, {"$: cannot parse: ", e.what()});
  } catch (...) {
    appendQuietly(errors, {"$: cannot parse: unknown error"});
  }
  return std::nullopt;
}

/// The bytes of the file at `path`, or std::nullopt after appending
/// `cannot read '<path>': <system error>` (or `out of memory`).
std::optional<std::string> readTextFile(const std::string &path,
                                        Errors &errors) noexcept;

} // namespace moec::json

#endif // MOEC_MODELS_JSONREADER_H
