//===- MpiCommunicator.cpp - Ranks as MPI processes -----------------------===//

#include "runtime/MpiCommunicator.h"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#ifdef MOEC_HAVE_MPI
#include <mpi.h>
#endif

using namespace moert;

bool MpiCommunicator::launchedByMpi() {
  for (const char *name :
       {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_ID"})
    if (std::getenv(name))
      return true;
  return false;
}

int64_t
moert::launcherRank(const std::function<const char *(const char *)> &lookup) {
  for (const char *name :
       {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    const char *value = lookup ? lookup(name) : std::getenv(name);
    if (!value || !*value)
      continue;
    char *end = nullptr;
    errno = 0;
    long long rank = std::strtoll(value, &end, 10);
    if (errno == 0 && *end == '\0' && rank >= 0)
      return rank;
  }
  return -1;
}

#ifndef MOEC_HAVE_MPI

struct MpiCommunicator::Impl {};

std::unique_ptr<MpiCommunicator>
MpiCommunicator::create(std::chrono::milliseconds, std::string &error) {
  error = "this moe-run was built without MPI (install an MPI, e.g. Debian's "
          "libopenmpi-dev, and rebuild)";
  return nullptr;
}
MpiCommunicator::~MpiCommunicator() = default;
bool MpiCommunicator::allReduceSum(float *, int64_t,
                                   const std::vector<int64_t> &,
                                   std::string &error) {
  error = "no MPI";
  return false;
}
bool MpiCommunicator::allGather(const void *, int64_t, void *,
                                const std::vector<int64_t> &,
                                std::string &error) {
  error = "no MPI";
  return false;
}
bool MpiCommunicator::allToAll(const void *, const std::vector<int64_t> &,
                               void *, const std::vector<int64_t> &,
                               const std::vector<int64_t> &,
                               std::string &error) {
  error = "no MPI";
  return false;
}
bool MpiCommunicator::send(const void *, int64_t, int64_t,
                           std::string &error) {
  error = "no MPI";
  return false;
}
bool MpiCommunicator::recv(void *, int64_t, int64_t, std::string &error) {
  error = "no MPI";
  return false;
}
bool MpiCommunicator::broadcast(void *, int64_t, int64_t, std::string &error) {
  error = "no MPI";
  return false;
}
void MpiCommunicator::beginWait(const std::string &) {}
void MpiCommunicator::endWait() {}
void MpiCommunicator::abortJob(const std::string &message) {
  std::fprintf(stderr, "moe-run: error: %s\n", message.c_str());
  std::exit(1);
}

#else

/// The watchdog and the groups' communicators.
struct MpiCommunicator::Impl {
  std::chrono::milliseconds timeout{60000};
  /// What the current operation waits for, and since when (0: nothing).
  std::mutex mutex;
  std::string waiting;
  std::atomic<int64_t> since{0};
  std::atomic<bool> done{false};
  std::thread watchdog;
  /// The launcher's rank until MPI gives its own (-1: unknown); read by the
  /// watchdog thread.
  std::atomic<int64_t> rank{-1};
  std::map<std::vector<int64_t>, MPI_Comm> groups;

  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void begin(const std::string &what) {
    std::lock_guard<std::mutex> lock(mutex);
    waiting = what;
    since = now();
  }
  void end() { since = 0; }
  void watch() {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      int64_t start = since;
      if (start == 0 || now() - start < timeout.count())
        continue;
      std::string what;
      {
        std::lock_guard<std::mutex> lock(mutex);
        what = waiting;
      }
      const int64_t known = rank;
      std::fprintf(stderr,
                   "moe-run: error: rank %s: %s did not finish within %.1f s: "
                   "a peer failed or cannot be reached; stopping the job\n",
                   known < 0 ? "?" : std::to_string(known).c_str(),
                   what.c_str(), timeout.count() / 1000.0);
      std::fflush(stderr);
      int initialized = 0;
      MPI_Initialized(&initialized);
      if (initialized)
        MPI_Abort(MPI_COMM_WORLD, 1);
      std::_Exit(1);
    }
  }
  /// The communicator of `group` (created by its members on first use).
  MPI_Comm comm(const std::vector<int64_t> &group) {
    auto it = groups.find(group);
    if (it != groups.end())
      return it->second;
    MPI_Group world, members;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    std::vector<int> ranks(group.begin(), group.end());
    MPI_Group_incl(world, static_cast<int>(ranks.size()), ranks.data(),
                   &members);
    MPI_Comm comm;
    MPI_Comm_create_group(MPI_COMM_WORLD, members, 0, &comm);
    MPI_Group_free(&members);
    MPI_Group_free(&world);
    groups[group] = comm;
    return comm;
  }
};

namespace {
std::string describe(const std::vector<int64_t> &group) {
  std::string text = "{";
  for (size_t i = 0; i < group.size(); ++i)
    text += (i ? "," : "") + std::to_string(group[i]);
  return text + "}";
}
} // namespace

std::unique_ptr<MpiCommunicator>
MpiCommunicator::create(std::chrono::milliseconds timeout, std::string &error) {
  std::unique_ptr<MpiCommunicator> comm(new MpiCommunicator());
  comm->impl = std::make_unique<Impl>();
  Impl &impl = *comm->impl;
  impl.timeout = timeout;
  impl.rank = launcherRank();
  impl.watchdog = std::thread([&impl] { impl.watch(); });
  impl.begin("the MPI bootstrap (MPI_Init)");
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) !=
      MPI_SUCCESS) {
    impl.end();
    error = "MPI_Init failed";
    return nullptr;
  }
  impl.end();
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  comm->worldRank = rank;
  comm->worldSize = size;
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank,
                          MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    int local = 0;
    MPI_Comm_rank(node, &local);
    comm->nodeRank = local;
    MPI_Comm_free(&node);
  }
  impl.rank = rank;
  return comm;
}

MpiCommunicator::~MpiCommunicator() {
  impl->done = true;
  if (impl->watchdog.joinable())
    impl->watchdog.join();
  for (auto &entry : impl->groups)
    if (entry.second != MPI_COMM_NULL)
      MPI_Comm_free(&entry.second);
  MPI_Finalize();
}

bool MpiCommunicator::allReduceSum(float *data, int64_t count,
                                   const std::vector<int64_t> &group,
                                   std::string &error) {
  if (count < 0 || count * static_cast<int64_t>(group.size()) > INT_MAX) {
    error = "all-reduce of " + std::to_string(count) + " floats is too large";
    return false;
  }
  impl->begin("an all-reduce of " + std::to_string(count) +
              " floats over ranks " + describe(group));
  // Gather every member's part, then sum in rank order: the same bits on
  // every member.
  std::vector<float> parts(count * group.size());
  int status = MPI_Allgather(data, static_cast<int>(count), MPI_FLOAT,
                             parts.data(), static_cast<int>(count), MPI_FLOAT,
                             impl->comm(group));
  impl->end();
  if (status != MPI_SUCCESS) {
    error = "MPI_Allgather failed";
    return false;
  }
  for (int64_t i = 0; i < count; ++i) {
    float sum = parts[i];
    for (size_t g = 1; g < group.size(); ++g)
      sum += parts[g * count + i];
    data[i] = sum;
  }
  return true;
}

bool MpiCommunicator::allGather(const void *input, int64_t bytes, void *output,
                                const std::vector<int64_t> &group,
                                std::string &error) {
  if (bytes < 0 || bytes * static_cast<int64_t>(group.size()) > INT_MAX) {
    error = "all-gather of " + std::to_string(bytes) + " bytes is too large";
    return false;
  }
  impl->begin("an all-gather of " + std::to_string(bytes) +
              " bytes over ranks " + describe(group));
  int status = MPI_Allgather(input, static_cast<int>(bytes), MPI_BYTE, output,
                             static_cast<int>(bytes), MPI_BYTE,
                             impl->comm(group));
  impl->end();
  if (status != MPI_SUCCESS) {
    error = "MPI_Allgather failed";
    return false;
  }
  return true;
}

bool MpiCommunicator::allToAll(const void *input,
                               const std::vector<int64_t> &sendBytes,
                               void *output,
                               const std::vector<int64_t> &recvBytes,
                               const std::vector<int64_t> &group,
                               std::string &error) {
  const size_t members = group.size();
  if (sendBytes.size() != members || recvBytes.size() != members) {
    error = "all-to-all: " + std::to_string(sendBytes.size()) + " send and " +
            std::to_string(recvBytes.size()) +
            " receive sizes for a group of " + std::to_string(members);
    return false;
  }
  std::vector<int> sendCounts(members), recvCounts(members),
      sendOffsets(members), recvOffsets(members);
  int64_t sendTotal = 0, recvTotal = 0;
  for (size_t i = 0; i < members; ++i) {
    if (sendBytes[i] < 0 || recvBytes[i] < 0) {
      error = "all-to-all: negative block size";
      return false;
    }
    sendOffsets[i] = static_cast<int>(sendTotal);
    recvOffsets[i] = static_cast<int>(recvTotal);
    sendTotal += sendBytes[i];
    recvTotal += recvBytes[i];
    if (sendTotal > INT_MAX || recvTotal > INT_MAX) {
      error = "all-to-all of more than " + std::to_string(INT_MAX) +
              " bytes per rank is not supported";
      return false;
    }
    sendCounts[i] = static_cast<int>(sendBytes[i]);
    recvCounts[i] = static_cast<int>(recvBytes[i]);
  }
  MPI_Comm comm = impl->comm(group);
  impl->begin("an all-to-all over ranks " + describe(group));
  // Agree on the block sizes first, so that a mismatch fails every member
  // with a message instead of corrupting or hanging the exchange.
  std::vector<int64_t> incoming(members);
  int status = MPI_Alltoall(sendBytes.data(), 1, MPI_INT64_T, incoming.data(),
                            1, MPI_INT64_T, comm);
  int mismatch = -1;
  for (size_t i = 0; i < members && mismatch < 0; ++i)
    if (incoming[i] != recvBytes[i])
      mismatch = static_cast<int>(i);
  int anyMismatch = mismatch >= 0 ? 1 : 0;
  if (status == MPI_SUCCESS)
    status = MPI_Allreduce(MPI_IN_PLACE, &anyMismatch, 1, MPI_INT, MPI_MAX,
                           comm);
  if (status == MPI_SUCCESS && !anyMismatch)
    status = MPI_Alltoallv(input, sendCounts.data(), sendOffsets.data(),
                           MPI_BYTE, output, recvCounts.data(),
                           recvOffsets.data(), MPI_BYTE, comm);
  impl->end();
  if (status != MPI_SUCCESS) {
    error = "MPI_Alltoallv over ranks " + describe(group) + " failed";
    return false;
  }
  if (mismatch >= 0) {
    error = "all-to-all: rank " + std::to_string(group[mismatch]) + " sends " +
            std::to_string(incoming[mismatch]) + " bytes to rank " +
            std::to_string(worldRank) + ", which expects " +
            std::to_string(recvBytes[mismatch]);
    return false;
  }
  if (anyMismatch) {
    error = "all-to-all over ranks " + describe(group) +
            ": another member's block sizes did not match";
    return false;
  }
  return true;
}

bool MpiCommunicator::send(const void *data, int64_t bytes, int64_t peer,
                           std::string &error) {
  if (bytes < 0 || bytes > INT_MAX || peer < 0 || peer >= worldSize ||
      peer == worldRank) {
    error = "bad send of " + std::to_string(bytes) + " bytes to rank " +
            std::to_string(peer);
    return false;
  }
  impl->begin("a send of " + std::to_string(bytes) + " bytes to rank " +
              std::to_string(peer));
  int status = MPI_Send(data, static_cast<int>(bytes), MPI_BYTE,
                        static_cast<int>(peer), 0, MPI_COMM_WORLD);
  impl->end();
  if (status != MPI_SUCCESS) {
    error = "MPI_Send to rank " + std::to_string(peer) + " failed";
    return false;
  }
  return true;
}

bool MpiCommunicator::recv(void *data, int64_t bytes, int64_t peer,
                           std::string &error) {
  if (bytes < 0 || bytes > INT_MAX || peer < 0 || peer >= worldSize ||
      peer == worldRank) {
    error = "bad receive of " + std::to_string(bytes) + " bytes from rank " +
            std::to_string(peer);
    return false;
  }
  impl->begin("a receive of " + std::to_string(bytes) + " bytes from rank " +
              std::to_string(peer));
  MPI_Status probe;
  MPI_Probe(static_cast<int>(peer), 0, MPI_COMM_WORLD, &probe);
  int count = 0;
  MPI_Get_count(&probe, MPI_BYTE, &count);
  if (count != bytes) {
    impl->end();
    error = "rank " + std::to_string(peer) + " sent " + std::to_string(count) +
            " bytes where " + std::to_string(bytes) + " were expected";
    return false;
  }
  int status = MPI_Recv(data, static_cast<int>(bytes), MPI_BYTE,
                        static_cast<int>(peer), 0, MPI_COMM_WORLD,
                        MPI_STATUS_IGNORE);
  impl->end();
  if (status != MPI_SUCCESS) {
    error = "MPI_Recv from rank " + std::to_string(peer) + " failed";
    return false;
  }
  return true;
}

bool MpiCommunicator::broadcast(void *data, int64_t bytes, int64_t root,
                                std::string &error) {
  if (bytes < 0 || bytes > INT_MAX || root < 0 || root >= worldSize) {
    error = "bad broadcast of " + std::to_string(bytes) + " bytes from rank " +
            std::to_string(root);
    return false;
  }
  impl->begin("a broadcast of " + std::to_string(bytes) + " bytes from rank " +
              std::to_string(root));
  int status = MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE,
                         static_cast<int>(root), MPI_COMM_WORLD);
  impl->end();
  if (status != MPI_SUCCESS) {
    error = "MPI_Bcast from rank " + std::to_string(root) + " failed";
    return false;
  }
  return true;
}

void MpiCommunicator::beginWait(const std::string &what) { impl->begin(what); }
void MpiCommunicator::endWait() { impl->end(); }

void MpiCommunicator::abortJob(const std::string &message) {
  std::fprintf(stderr, "moe-run: error: rank %lld: %s\n",
               static_cast<long long>(worldRank), message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

#endif // MOEC_HAVE_MPI
