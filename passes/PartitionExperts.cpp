//===- PartitionExperts.cpp - The moe-partition-experts pass --------------===//
//
// Places the routed experts of every layer on the ranks of its stage:
// `expert-parallel` groups each hold num_experts / expert-parallel whole
// experts, and inside a group each expert's FFN is cut `expert-tensor-
// parallel` ways (column-parallel gate/up, row-parallel down). The two
// degrees multiply to the stage's rank count, so the experts of a layer never
// leave its stage (its node). Activations are replicated on the ranks of a
// stage, so each rank routes every token, computes the copies that go to its
// experts, and an all-reduce sums the ranks' shares.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/Partition.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPARTITIONEXPERTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct MoEPartitionExpertsPass
    : public moe::impl::MoEPartitionExpertsBase<MoEPartitionExpertsPass> {
  using MoEPartitionExpertsBase::MoEPartitionExpertsBase;

  void runOnOperation() override;
};
} // namespace

void MoEPartitionExpertsPass::runOnOperation() {
  ModuleOp module = getOperation();
  int64_t ep = expertParallel, etp = expertTensorParallel;
  if (ep < 1 || etp < 1) {
    module.emitError() << "moe-partition-experts: expert-parallel and "
                          "expert-tensor-parallel must be at least 1, got "
                       << ep << " and " << etp;
    return signalPassFailure();
  }
  int64_t group = getTensorParallel(module);
  if (ep * etp != group) {
    module.emitError() << "moe-partition-experts: expert-parallel (" << ep
                       << ") x expert-tensor-parallel (" << etp
                       << ") must equal the ranks of a stage (" << group
                       << ", the tensor-parallel degree)";
    return signalPassFailure();
  }
  if (group == 1)
    return;
  if (allToAll && etp != 1) {
    module.emitError() << "moe-partition-experts: all-to-all needs whole "
                          "experts on each rank (expert-tensor-parallel=1), "
                          "got "
                       << etp;
    return signalPassFailure();
  }

  ShardPlan plan;
  SmallVector<ExpertsOp> experts;
  WalkResult walk = module.walk([&](Operation *op) -> WalkResult {
    if (isa<ExpertFFNOp>(op))
      return op->emitError("moe-partition-experts needs graph-level "
                           "moe.experts; run it before moe-decompose");
    auto expertsOp = dyn_cast<ExpertsOp>(op);
    if (!expertsOp)
      return WalkResult::advance();
    if (expertsOp.getGlobalExperts())
      return op->emitError("moe-partition-experts: experts are already "
                           "partitioned");
    int64_t count = expertsOp.getDown().getType().getDimSize(0);
    int64_t width = expertsOp.getDown().getType().getDimSize(2);
    if (count % ep != 0)
      return op->emitError()
             << "moe-partition-experts: " << count
             << " experts cannot be spread evenly over " << ep
             << " expert-parallel groups";
    if (width % etp != 0)
      return op->emitError()
             << "moe-partition-experts: the expert ffn width (" << width
             << ") is not divisible by expert-tensor-parallel (" << etp
             << ")";
    // A gated gate_up holds the gate rows, then the up rows: each is cut.
    SmallVector<int64_t> chunks;
    if (expertsOp.getGated() && etp > 1)
      chunks = {1, 2, 1};
    if (failed(plan.add(expertsOp.getGateUp(), {ep, etp, 1}, chunks)) ||
        failed(plan.add(expertsOp.getDown(), {ep, 1, etp})))
      return WalkResult::interrupt();
    experts.push_back(expertsOp);
    return WalkResult::advance();
  });
  if (walk.wasInterrupted() || failed(plan.apply()))
    return signalPassFailure();

  for (ExpertsOp op : experts) {
    if (ep > 1) {
      op.setGlobalExperts(op.getDown().getType().getDimSize(0) * ep);
      // Ranks r of the stage hold expert group r / etp (the weights' part
      // index along the expert dimension).
      OpBuilder b(op);
      auto expertGroup = GroupRankOp::create(
          b, op.getLoc(), RankedTensorType::get({1}, b.getI32Type()), group,
          etp);
      op.getExpertGroupMutable().assign(expertGroup);
    }
    if (allToAll)
      op.setAllToAll(group);
    else
      insertAllReduceAfter(op.getResult(), group);
  }
}
