//===- Communicator.h - Collectives and transfers among ranks ---*- C++ -*-===//
//
// The communicator layer that partitioned plans run on: all-reduce and
// all-gather among the tensor-parallel ranks of a stage, the all-to-all that
// moves routed tokens to their experts' ranks and back, blocking send/recv
// between pipeline stages (DESIGN.md section 6).
//
// Communicator is the interface the executors use; a multi-process NCCL/MPI
// implementation plugs in behind it. LocalWorld is the in-process one: ranks
// are threads of one process, so a partitioned plan can be run and checked
// on one machine against the unpartitioned result. Its design favours
// correctness and diagnosability over speed:
//
//  - One mutex and one condition variable guard the whole world; every state
//    change wakes every waiter, which rechecks its own condition.
//  - Collectives are matched per group by a sequence number: the k-th call
//    a rank makes over group G joins operation (G, k). Different groups
//    progress independently; the members must only agree on the order of
//    their calls over one group. The kind (all-reduce or all-gather) and the
//    size of every member's call are checked against the first arrival
//    (an all-to-all's block sizes are checked pairwise once all arrived).
//  - The last member to arrive computes the result once, into a buffer owned
//    by the operation: an all-reduce sums in group order, so every member
//    gets the same bits whatever the thread timing. Each member then copies
//    the result out. Inputs are read where they lie (no copy on arrival);
//    that is safe because no member leaves an operation once everyone has
//    arrived, until the result is complete.
//  - send/recv are rendezvous transfers matched per (source, destination)
//    pair in FIFO order: send posts its buffer and blocks until the receiver
//    has copied it, or found that the sizes differ (then both fail). Two
//    ranks that send to each other at the same time therefore deadlock
//    (until the timeout), as with MPI_Ssend.
//  - Every wait gives up after the world's timeout with an error naming the
//    ranks that did not arrive; LocalWorld::abort wakes every waiter with
//    the abort reason. A wait that may no longer leave (the operation's data
//    is being read or written) ends promptly without needing either.
//
// No exception leaves this API: failures are a false return and a message.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_COMMUNICATOR_H
#define MOEC_RUNTIME_COMMUNICATOR_H

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moert {

/// Collectives and point-to-point transfers among the ranks of one job.
/// Ranks are numbered 0..size()-1 over the whole job; a group is a sorted
/// list of ranks containing the caller (e.g. a pipeline stage's
/// tensor-parallel ranks). Every member of a group calls a collective with
/// the same group and sizes, in the same order as its other collectives.
/// Every operation returns false and sets `error` on failure.
class Communicator {
public:
  virtual ~Communicator() = default;
  /// This rank, in 0..size()-1.
  virtual int64_t rank() const = 0;
  /// The number of ranks in the job.
  virtual int64_t size() const = 0;
  /// Element-wise sum of `count` floats over `group`, in place. The result
  /// is bit-identical on every member (summed in group order).
  virtual bool allReduceSum(float *data, int64_t count,
                            const std::vector<int64_t> &group,
                            std::string &error) = 0;
  /// Each member contributes `bytes` bytes; `output` receives
  /// group.size() * bytes bytes, member i's block (i = position in group)
  /// at offset i * bytes. `input` may lie inside `output`.
  virtual bool allGather(const void *input, int64_t bytes, void *output,
                         const std::vector<int64_t> &group,
                         std::string &error) = 0;
  /// Personalised exchange: `input` holds one block per member in group
  /// order, `sendBytes[j]` bytes for member j; `output` receives member i's
  /// block for this rank at the offset of the sum of `recvBytes[0..i)`.
  /// Every member's sendBytes[j] must equal member j's recvBytes for it,
  /// else every member gets an error naming both sizes. The block for
  /// this rank itself is copied too. `input` and `output` must not overlap.
  virtual bool allToAll(const void *input,
                        const std::vector<int64_t> &sendBytes, void *output,
                        const std::vector<int64_t> &recvBytes,
                        const std::vector<int64_t> &group,
                        std::string &error) = 0;
  /// Blocking transfer of `bytes` bytes to `peer`; returns once `peer` has
  /// received them. The receiver's `bytes` must equal the sender's, else
  /// both get an error naming the two sizes.
  virtual bool send(const void *data, int64_t bytes, int64_t peer,
                    std::string &error) = 0;
  /// Blocking receipt of the next message `peer` sends to this rank
  /// (messages between two ranks arrive in the order they were sent).
  virtual bool recv(void *data, int64_t bytes, int64_t peer,
                    std::string &error) = 0;
};

/// An in-process world: ranks are threads sharing one address space, for
/// tests and for debugging a partitioned plan on one machine (DESIGN.md
/// section 6). Every operation gives up after `timeout` with an error that
/// names the ranks that did not arrive, instead of hanging.
class LocalWorld {
public:
  /// A world of `size` ranks (at least 1; smaller values mean 1).
  explicit LocalWorld(int64_t size, std::chrono::milliseconds timeout =
                                        std::chrono::seconds(60));
  ~LocalWorld();
  LocalWorld(const LocalWorld &) = delete;
  LocalWorld &operator=(const LocalWorld &) = delete;

  /// The number of ranks.
  int64_t size() const;
  /// The communicator of `rank` (0 <= rank < size, else null); call it from
  /// that rank's thread. Valid while the world lives.
  std::unique_ptr<Communicator> communicator(int64_t rank);
  /// Marks the world failed (e.g. a rank's thread hit an error): every
  /// pending and later operation returns false with `reason` (naming the
  /// rank), so no thread hangs waiting for a dead peer. The first abort's
  /// reason is kept. An operation whose data every member had already
  /// handed over still completes normally.
  void abort(int64_t rank, const std::string &reason);

  /// Shared state of the world (defined in Communicator.cpp).
  struct State;

private:
  std::shared_ptr<State> state;
};

} // namespace moert

#endif // MOEC_RUNTIME_COMMUNICATOR_H
