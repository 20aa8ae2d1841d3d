//===- CommandLine.h - Option parsing of moe-run's commands -----*- C++ -*-===//
//
// The error type and number parsing the measurement commands (step-time,
// bench-kernels) share: a CommandError carries its exit status (2 for a bad
// command line).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_COMMANDLINE_H
#define MOEC_TOOLS_MOE_RUN_COMMANDLINE_H

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

/// A failure of a command, with its exit status.
struct CommandError {
  std::string message;
  int status = 1;
};

/// Throws the CommandError of a bad command line.
[[noreturn]] inline void commandUsage(const std::string &message) {
  throw CommandError{message, 2};
}

/// Option `name`'s value `text` as an integer in [low, high].
inline int64_t parseIntegerOption(const std::string &name,
                                  const std::string &text, int64_t low,
                                  int64_t high) {
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || errno || value < low || value > high)
    commandUsage("bad " + name + " value '" + text +
                 "': expected an integer in [" + std::to_string(low) + ", " +
                 std::to_string(high) + "]");
  return value;
}

/// Runs `command()`, printing a CommandError it throws as one line
/// `moe-run: error: <message>` and returning its status.
template <typename Command> int runCommand(Command command) {
  try {
    return command();
  } catch (const CommandError &e) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe-run: error: %s\n", e.message.c_str());
    return e.status;
  }
}

#endif // MOEC_TOOLS_MOE_RUN_COMMANDLINE_H
