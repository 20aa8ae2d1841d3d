//===- ArtifactJson.h - Reading an artifact's JSON fields ------*- C++ -*-===//
//
// Internal to the artifact reader (Artifact.cpp, ExecutionReader.cpp): the
// typed field accessors that name the JSON path and what was expected when
// a field is missing or wrong, by throwing ReadError.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ARTIFACTJSON_H
#define MOERT_ARTIFACTJSON_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

using json = nlohmann::json;

/// A value as messages show it after ", got ": one line, at most 60 bytes.
inline std::string show(const json &value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60)
    text = text.substr(0, 57) + "...";
  return text;
}

/// The first problem found; carries the whole message.
struct ReadError {
  std::string message;
};

/// Field accessors for the artifact `name`: each fails with the field's
/// JSON path and what it expected.
class JsonFields {
public:
  explicit JsonFields(std::string name) : name(std::move(name)) {}

protected:
  [[noreturn]] void fail(const std::string &path, const std::string &what) {
    throw ReadError{"'" + name + "': " + path + ": " + what};
  }
  /// Fails unless `got == want`; `what` names `want` in the message.
  void expect(int64_t got, int64_t want, const std::string &path,
              const std::string &what) {
    if (got != want)
      fail(path, "expected " + what + std::to_string(want) + ", got " +
                     std::to_string(got));
  }
  /// `object[key]`, which must be present and pass `valid`.
  template <typename Valid>
  const json &get(const json &object, const std::string &path, const char *key,
                  const char *expected, Valid valid) {
    auto it = object.find(key);
    if (it == object.end())
      fail(path + "." + key,
           std::string("missing required field (expected ") + expected + ")");
    if (!valid(*it))
      fail(path + "." + key, std::string("expected ") + expected);
    return *it;
  }
  static bool isCount(const json &value, bool positive) {
    return value.is_number_unsigned() &&
           value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX) &&
           (!positive || value.get<uint64_t>() > 0);
  }
  int64_t integer(const json &object, const std::string &path, const char *key,
                  bool positive) {
    return get(object, path, key,
               positive ? "a positive integer" : "a non-negative integer",
               [&](const json &v) { return isCount(v, positive); })
        .get<int64_t>();
  }
  std::vector<int64_t> integers(const json &object, const std::string &path,
                                const char *key, bool positive) {
    return get(object, path, key,
               positive ? "an array of positive integers"
                        : "an array of non-negative integers",
               [&](const json &v) {
                 return v.is_array() &&
                        std::all_of(v.begin(), v.end(), [&](const json &e) {
                          return isCount(e, positive);
                        });
               })
        .get<std::vector<int64_t>>();
  }
  std::string string(const json &object, const std::string &path,
                     const char *key) {
    return get(object, path, key, "a string",
               [](const json &v) { return v.is_string(); })
        .get<std::string>();
  }
  const json &object(const json &parent, const std::string &path,
                     const char *key) {
    return get(parent, path, key, "an object",
               [](const json &v) { return v.is_object(); });
  }
  const json &array(const json &parent, const std::string &path,
                    const char *key) {
    return get(parent, path, key, "an array",
               [](const json &v) { return v.is_array(); });
  }

  /// The artifact's name, as messages show it.
  std::string name;
};

} // namespace moert

#endif // MOERT_ARTIFACTJSON_H
