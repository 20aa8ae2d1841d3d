//===- Communicator.cpp - Collectives and transfers among ranks -----------===//
//
// LocalWorld: the in-process communicator (see Communicator.h for the
// design). Life of an operation, all transitions under the world's mutex:
//
//   collective:  Gathering --(last member arrives)--> Computing --> Done
//                    |                                    |
//                    +--(timeout, abort, mismatch)--> Failed <--(no memory)
//   message:     Queued --(receiver takes it)--> Claimed --> Done
//                    |                   |
//                    +--(timeout, abort) +--(size mismatch)--> Failed
//
// While Gathering or Queued, a waiter may fail the operation and leave: no
// one has read its buffer yet. Computing and Claimed are short, local phases
// run outside the lock by one thread that reads the other members' buffers;
// nobody leaves until they end.
//
//===----------------------------------------------------------------------===//

#include "runtime/Communicator.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

using namespace moert;
using Clock = std::chrono::steady_clock;

namespace {

enum class Kind { AllReduceSum, AllGather, AllToAll };

const char *kindName(Kind kind) {
  switch (kind) {
  case Kind::AllReduceSum:
    return "allReduceSum";
  case Kind::AllGather:
    return "allGather";
  case Kind::AllToAll:
    return "allToAll";
  }
  return "?";
}

int64_t sum(const std::vector<int64_t> &sizes) {
  int64_t total = 0;
  for (int64_t size : sizes)
    total += size;
  return total;
}

std::string formatRanks(const std::vector<int64_t> &ranks) {
  std::string text = "{";
  for (size_t i = 0; i < ranks.size(); ++i)
    text += (i ? "," : "") + std::to_string(ranks[i]);
  return text + "}";
}

/// "rank 3" or "ranks 2, 3".
std::string nameRanks(const std::vector<int64_t> &ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

/// One collective call over a group, shared by its members.
struct Collective {
  enum Phase { Gathering, Computing, Done, Failed };
  Phase phase = Gathering;
  Kind kind = Kind::AllReduceSum;
  int64_t bytes = 0;     // Each member's contribution.
  int64_t firstRank = 0; // Whose kind and size the others must match.
  std::vector<const void *> inputs; // Per group position; null until arrived.
  /// AllToAll: each member's block sizes (copied: a member may leave and
  /// free its vectors while others still copy out).
  std::vector<std::vector<int64_t>> sendSizes, recvSizes;
  /// AllToAll: where each member's input starts in `result`.
  std::vector<int64_t> resultOffsets;
  std::vector<bool> arrived;
  size_t numArrived = 0;
  std::unique_ptr<char[]> result; // Complete once phase == Done.
  std::string error;              // Set once phase == Failed.
};

/// One send, queued on its (source, destination) channel.
struct Message {
  enum Phase { Queued, Claimed, Done, Failed };
  Phase phase = Queued;
  const void *data = nullptr;
  int64_t bytes = 0;
  std::string error;
};

} // namespace

struct LocalWorld::State {
  using GroupKey = std::pair<std::vector<int64_t>, uint64_t>;

  State(int64_t worldSize, std::chrono::milliseconds worldTimeout)
      : size(worldSize), timeout(worldTimeout) {}

  const int64_t size;
  const std::chrono::milliseconds timeout;

  std::mutex mutex;
  std::condition_variable changed; // Notified on every state change.
  bool aborted = false;
  std::string abortReason;
  /// The next sequence number of each (group, rank).
  std::map<std::pair<std::vector<int64_t>, int64_t>, uint64_t> sequence;
  /// Collectives some but not all members have joined (or being computed).
  std::map<GroupKey, std::shared_ptr<Collective>> collectives;
  /// Why collectives that failed before every member arrived did so, for the
  /// members that arrive late.
  std::map<GroupKey, std::string> failedCollectives;
  /// Sends not yet taken by their receiver, per (source, destination).
  std::map<std::pair<int64_t, int64_t>, std::deque<std::shared_ptr<Message>>>
      channels;

  std::string timeoutText() const {
    return "timed out after " + std::to_string(timeout.count()) + " ms";
  }
  /// Waits for a change until `deadline`; false once it has passed.
  bool wait(std::unique_lock<std::mutex> &lock, Clock::time_point deadline) {
    if (Clock::now() >= deadline)
      return false;
    changed.wait_until(lock, deadline);
    return true;
  }
};

namespace {

class LocalCommunicator : public Communicator {
public:
  LocalCommunicator(std::shared_ptr<LocalWorld::State> worldState, int64_t rank)
      : state(std::move(worldState)), self(rank) {}

  int64_t rank() const override { return self; }
  int64_t size() const override { return state->size; }

  bool allReduceSum(float *data, int64_t count,
                    const std::vector<int64_t> &group,
                    std::string &error) override {
    return guarded(error, [&] {
      const int64_t maxCount =
          std::numeric_limits<int64_t>::max() / int64_t(sizeof(float));
      if (count > maxCount)
        return fail(error, "allReduceSum: count " + std::to_string(count) +
                               " is too large");
      return collective(Kind::AllReduceSum, data,
                        count * int64_t(sizeof(float)), data, group, error,
                        count);
    });
  }

  bool allGather(const void *input, int64_t bytes, void *output,
                 const std::vector<int64_t> &group,
                 std::string &error) override {
    return guarded(error, [&] {
      return collective(Kind::AllGather, input, bytes, output, group, error,
                        bytes);
    });
  }

  bool allToAll(const void *input, const std::vector<int64_t> &sendBytes,
                void *output, const std::vector<int64_t> &recvBytes,
                const std::vector<int64_t> &group,
                std::string &error) override {
    return guarded(error, [&] {
      if (sendBytes.size() != group.size() || recvBytes.size() != group.size())
        return fail(error, "allToAll: " + std::to_string(sendBytes.size()) +
                               " send and " +
                               std::to_string(recvBytes.size()) +
                               " receive sizes for a group of " +
                               std::to_string(group.size()));
      const int64_t limit = std::numeric_limits<int64_t>::max() /
                            static_cast<int64_t>(group.size() + 1);
      for (const std::vector<int64_t> *sizes : {&sendBytes, &recvBytes})
        for (int64_t size : *sizes)
          if (size < 0 || size > limit)
            return fail(error, "allToAll: block size " + std::to_string(size) +
                                   " is negative or too large");
      Sizes sizes{&sendBytes, &recvBytes};
      return collective(Kind::AllToAll, input, sum(sendBytes), output, group,
                        error, sum(sendBytes), &sizes);
    });
  }

  bool send(const void *data, int64_t bytes, int64_t peer,
            std::string &error) override {
    return guarded(error, [&] { return sendImpl(data, bytes, peer, error); });
  }

  bool recv(void *data, int64_t bytes, int64_t peer,
            std::string &error) override {
    return guarded(error, [&] { return recvImpl(data, bytes, peer, error); });
  }

private:
  bool fail(std::string &error, const std::string &message) const {
    error = "rank " + std::to_string(self) + ": " + message;
    return false;
  }

  /// Runs `body`, turning an escaping exception into an error.
  template <typename Body> bool guarded(std::string &error, Body body) {
    try {
      return body();
    } catch (const std::exception &e) {
      error = "rank " + std::to_string(self) + ": " + e.what();
    } catch (...) {
      error = "rank " + std::to_string(self) + ": unknown exception";
    }
    return false;
  }

  /// "" when `group` is a valid group containing this rank.
  std::string checkGroup(const std::vector<int64_t> &group) const {
    for (size_t i = 0; i < group.size(); ++i) {
      if (group[i] < 0 || group[i] >= state->size)
        return "group " + formatRanks(group) + " has rank " +
               std::to_string(group[i]) + " outside the world of " +
               std::to_string(state->size) + " ranks";
      if (i && group[i] <= group[i - 1])
        return "group " + formatRanks(group) +
               " is not sorted ascending without repeats";
    }
    if (!std::binary_search(group.begin(), group.end(), self))
      return "group " + formatRanks(group) + " does not contain rank " +
             std::to_string(self);
    return "";
  }

  std::string checkPeer(int64_t peer) const {
    if (peer < 0 || peer >= state->size)
      return "peer " + std::to_string(peer) + " is outside the world of " +
             std::to_string(state->size) + " ranks";
    if (peer == self)
      return "peer " + std::to_string(peer) + " is this rank";
    return "";
  }

  /// How a member's call is described in mismatch errors.
  static std::string describeCall(Kind kind, int64_t bytes) {
    if (kind == Kind::AllReduceSum)
      return "allReduceSum of " +
             std::to_string(bytes / int64_t(sizeof(float))) + " floats";
    if (kind == Kind::AllToAll)
      return "allToAll";
    return "allGather of " + std::to_string(bytes) + " bytes";
  }

  /// An all-to-all's block sizes.
  struct Sizes {
    const std::vector<int64_t> *send, *recv;
  };

  /// "" when every member sends each other member what it expects.
  static std::string checkBlocks(const Collective &op,
                                 const std::vector<int64_t> &group) {
    for (size_t i = 0; i < group.size(); ++i)
      for (size_t j = 0; j < group.size(); ++j)
        if (op.sendSizes[i][j] != op.recvSizes[j][i])
          return "rank " + std::to_string(group[i]) + " sends " +
                 std::to_string(op.sendSizes[i][j]) + " bytes to rank " +
                 std::to_string(group[j]) + ", which expects " +
                 std::to_string(op.recvSizes[j][i]);
    return "";
  }

  /// The collectives: `bytes` per member in (an all-to-all: this member's
  /// total), the result (bytes for a sum, group.size() * bytes for a
  /// gather, every member's input for an all-to-all) out. `size` is the
  /// caller's size argument, for messages; `blocks` an all-to-all's sizes.
  bool collective(Kind kind, const void *input, int64_t bytes, void *output,
                  const std::vector<int64_t> &group, std::string &error,
                  int64_t size, const Sizes *blocks = nullptr) {
    const char *name = kindName(kind);
    if (size < 0)
      return fail(error, std::string(name) + ": negative " +
                             (kind == Kind::AllReduceSum ? "count " : "size ") +
                             std::to_string(size));
    if (std::string problem = checkGroup(group); !problem.empty())
      return fail(error, std::string(name) + ": " + problem);
    const int64_t members = static_cast<int64_t>(group.size());
    if (kind == Kind::AllGather &&
        bytes > std::numeric_limits<int64_t>::max() / members)
      return fail(error, "allGather: " + std::to_string(members) +
                             " blocks of " + std::to_string(bytes) +
                             " bytes are too large");
    int64_t resultBytes = kind == Kind::AllGather ? bytes * members : bytes;
    if (kind == Kind::AllToAll)
      resultBytes = sum(*blocks->recv);
    if ((bytes > 0 && !input) || (resultBytes > 0 && !output))
      return fail(error, std::string(name) + ": null buffer for " +
                             std::to_string(bytes > 0 ? bytes : resultBytes) +
                             " bytes");
    if (members == 1) { // Nothing to wait for.
      if (kind == Kind::AllToAll && (*blocks->send)[0] != (*blocks->recv)[0])
        return fail(error, "allToAll: sends " +
                               std::to_string((*blocks->send)[0]) +
                               " bytes to itself but expects " +
                               std::to_string((*blocks->recv)[0]));
      if (kind != Kind::AllReduceSum && bytes > 0)
        std::memmove(output, input, static_cast<size_t>(bytes));
      return true;
    }
    const size_t position = static_cast<size_t>(
        std::lower_bound(group.begin(), group.end(), self) - group.begin());

    LocalWorld::State &s = *state;
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.aborted)
      return fail(error, std::string(name) + ": " + s.abortReason);
    uint64_t &next = s.sequence[{group, self}];
    LocalWorld::State::GroupKey key{group, next++};
    const std::string what = std::string(name) + " #" +
                             std::to_string(key.second) + " over group " +
                             formatRanks(group);
    if (auto it = s.failedCollectives.find(key);
        it != s.failedCollectives.end())
      return fail(error,
                  what + " failed before this rank arrived: " + it->second);

    std::shared_ptr<Collective> &slot = s.collectives[key];
    if (!slot) {
      slot = std::make_shared<Collective>();
      slot->kind = kind;
      slot->bytes = bytes;
      slot->firstRank = self;
      slot->inputs.assign(group.size(), nullptr);
      slot->sendSizes.resize(group.size());
      slot->recvSizes.resize(group.size());
      slot->arrived.assign(group.size(), false);
    }
    std::shared_ptr<Collective> op = slot;
    // Fails a collective that is still gathering; no buffer was read.
    auto failGathering = [&](const std::string &why) {
      op->phase = Collective::Failed;
      op->error = why;
      s.collectives.erase(key);
      s.failedCollectives[key] = why;
      s.changed.notify_all();
    };

    if (op->kind != kind || (kind != Kind::AllToAll && op->bytes != bytes)) {
      failGathering("rank " + std::to_string(self) + " called " +
                    describeCall(kind, bytes) + " but rank " +
                    std::to_string(op->firstRank) + " called " +
                    describeCall(op->kind, op->bytes));
      return fail(error, what + ": " + op->error);
    }
    op->inputs[position] = input;
    if (blocks) {
      op->sendSizes[position] = *blocks->send;
      op->recvSizes[position] = *blocks->recv;
    }
    op->arrived[position] = true;
    ++op->numArrived;

    if (op->numArrived == group.size()) {
      // Last to arrive: compute the result for everyone, outside the lock.
      op->phase = Collective::Computing;
      s.collectives.erase(key);
      lock.unlock();
      std::string computeError;
      try {
        int64_t computed = resultBytes;
        if (kind == Kind::AllToAll) {
          computeError = checkBlocks(*op, group);
          op->resultOffsets.assign(1, 0);
          for (const std::vector<int64_t> &sent : op->sendSizes)
            op->resultOffsets.push_back(op->resultOffsets.back() + sum(sent));
          computed = op->resultOffsets.back();
        }
        if (computeError.empty()) {
          op->result.reset(
              new char[static_cast<size_t>(std::max<int64_t>(computed, 1))]);
          compute(*op);
        }
      } catch (const std::exception &e) {
        computeError = std::string("cannot compute the result: ") + e.what();
      }
      lock.lock();
      if (computeError.empty()) {
        op->phase = Collective::Done;
      } else {
        op->phase = Collective::Failed;
        op->error = computeError;
      }
      s.changed.notify_all();
    } else {
      const Clock::time_point deadline = Clock::now() + s.timeout;
      while (op->phase == Collective::Gathering) {
        if (s.aborted) {
          failGathering(s.abortReason);
        } else if (!s.wait(lock, deadline) &&
                   op->phase == Collective::Gathering) {
          std::vector<int64_t> missing;
          for (size_t i = 0; i < group.size(); ++i)
            if (!op->arrived[i])
              missing.push_back(group[i]);
          failGathering(s.timeoutText() + "; " + nameRanks(missing) +
                        " did not arrive");
        }
      }
      // Others' buffers are being read: the computing thread ends soon.
      while (op->phase == Collective::Computing)
        s.changed.wait(lock);
    }
    if (op->phase == Collective::Failed)
      return fail(error, what + ": " + op->error);
    lock.unlock();
    if (kind == Kind::AllToAll) {
      // Member i's block for this rank follows its blocks for the members
      // before this one.
      char *out = static_cast<char *>(output);
      for (size_t i = 0; i < group.size(); ++i) {
        const std::vector<int64_t> &sent = op->sendSizes[i];
        int64_t at = op->resultOffsets[i];
        for (size_t j = 0; j < position; ++j)
          at += sent[j];
        if (sent[position] > 0)
          std::memcpy(out, op->result.get() + at,
                      static_cast<size_t>(sent[position]));
        out += sent[position];
      }
      return true;
    }
    if (resultBytes > 0)
      std::memcpy(output, op->result.get(), static_cast<size_t>(resultBytes));
    return true;
  }

  /// Fills `op.result` from the members' inputs (all present).
  static void compute(Collective &op) {
    const size_t bytes = static_cast<size_t>(op.bytes);
    if (op.kind == Kind::AllToAll) {
      for (size_t i = 0; i < op.inputs.size(); ++i) {
        int64_t size = op.resultOffsets[i + 1] - op.resultOffsets[i];
        if (size > 0)
          std::memcpy(op.result.get() + op.resultOffsets[i], op.inputs[i],
                      static_cast<size_t>(size));
      }
      return;
    }
    if (op.kind == Kind::AllGather) {
      for (size_t i = 0; i < op.inputs.size(); ++i)
        if (bytes)
          std::memcpy(op.result.get() + i * bytes, op.inputs[i], bytes);
      return;
    }
    // Sum in group order: ((x0 + x1) + x2) + ... for every element, so the
    // bits depend only on the inputs.
    const size_t count = bytes / sizeof(float);
    float *sum = reinterpret_cast<float *>(op.result.get());
    if (count == 0)
      return;
    std::memcpy(sum, op.inputs[0], count * sizeof(float));
    for (size_t i = 1; i < op.inputs.size(); ++i) {
      const float *term = static_cast<const float *>(op.inputs[i]);
      for (size_t j = 0; j < count; ++j)
        sum[j] += term[j];
    }
  }

  bool sendImpl(const void *data, int64_t bytes, int64_t peer,
                std::string &error) {
    const std::string what = "send of " + std::to_string(bytes) +
                             " bytes to rank " + std::to_string(peer);
    if (std::string problem = checkPeer(peer); !problem.empty())
      return fail(error, what + ": " + problem);
    if (bytes < 0)
      return fail(error, what + ": negative size");
    if (bytes > 0 && !data)
      return fail(error, what + ": null buffer");

    LocalWorld::State &s = *state;
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.aborted)
      return fail(error, what + ": " + s.abortReason);
    auto message = std::make_shared<Message>();
    message->data = data;
    message->bytes = bytes;
    std::deque<std::shared_ptr<Message>> &channel = s.channels[{self, peer}];
    channel.push_back(message);
    s.changed.notify_all();

    const Clock::time_point deadline = Clock::now() + s.timeout;
    while (message->phase == Message::Queued) {
      std::string why;
      if (s.aborted)
        why = s.abortReason;
      else if (!s.wait(lock, deadline) && message->phase == Message::Queued)
        why = s.timeoutText() + "; rank " + std::to_string(peer) +
              " did not receive";
      if (!why.empty()) {
        channel.erase(std::find(channel.begin(), channel.end(), message));
        s.changed.notify_all();
        return fail(error, what + ": " + why);
      }
    }
    // The receiver is copying our buffer: it ends soon.
    while (message->phase == Message::Claimed)
      s.changed.wait(lock);
    if (message->phase == Message::Failed)
      return fail(error, what + ": " + message->error);
    return true;
  }

  bool recvImpl(void *data, int64_t bytes, int64_t peer, std::string &error) {
    const std::string what = "recv of " + std::to_string(bytes) +
                             " bytes from rank " + std::to_string(peer);
    if (std::string problem = checkPeer(peer); !problem.empty())
      return fail(error, what + ": " + problem);
    if (bytes < 0)
      return fail(error, what + ": negative size");
    if (bytes > 0 && !data)
      return fail(error, what + ": null buffer");

    LocalWorld::State &s = *state;
    std::unique_lock<std::mutex> lock(s.mutex);
    std::deque<std::shared_ptr<Message>> &channel = s.channels[{peer, self}];
    const Clock::time_point deadline = Clock::now() + s.timeout;
    while (true) {
      if (s.aborted)
        return fail(error, what + ": " + s.abortReason);
      if (!channel.empty())
        break;
      if (!s.wait(lock, deadline) && channel.empty())
        return fail(error, what + ": " + s.timeoutText() + "; rank " +
                               std::to_string(peer) + " did not send");
    }
    std::shared_ptr<Message> message = channel.front();
    channel.pop_front();
    if (message->bytes != bytes) {
      message->phase = Message::Failed;
      message->error = "rank " + std::to_string(self) +
                       " posted a receive of " + std::to_string(bytes) +
                       " bytes";
      s.changed.notify_all();
      return fail(error, what + ": rank " + std::to_string(peer) + " sent " +
                             std::to_string(message->bytes) + " bytes");
    }
    message->phase = Message::Claimed;
    lock.unlock();
    if (bytes > 0)
      std::memcpy(data, message->data, static_cast<size_t>(bytes));
    lock.lock();
    message->phase = Message::Done;
    s.changed.notify_all();
    return true;
  }

  std::shared_ptr<LocalWorld::State> state;
  int64_t self;
};

} // namespace

LocalWorld::LocalWorld(int64_t size, std::chrono::milliseconds timeout)
    : state(std::make_shared<State>(std::max<int64_t>(size, 1), timeout)) {}

LocalWorld::~LocalWorld() = default;

int64_t LocalWorld::size() const { return state->size; }

std::unique_ptr<Communicator> LocalWorld::communicator(int64_t rank) {
  if (rank < 0 || rank >= state->size)
    return nullptr;
  try {
    return std::make_unique<LocalCommunicator>(state, rank);
  } catch (...) {
    return nullptr;
  }
}

void LocalWorld::abort(int64_t rank, const std::string &reason) {
  std::lock_guard<std::mutex> lock(state->mutex);
  if (!state->aborted) {
    state->aborted = true;
    try {
      state->abortReason =
          "world aborted by rank " + std::to_string(rank) + ": " + reason;
    } catch (...) {
      state->abortReason.clear(); // Still aborted, without the reason.
    }
  }
  state->changed.notify_all();
}
