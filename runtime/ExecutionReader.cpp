//===- ExecutionReader.cpp - Reading an artifact's execution plan --------===//

#include "runtime/ExecutionReader.h"

using namespace moert;

namespace {
/// Reads `$.stages[s].execution` (codegen/README.md), throwing ReadError.
class ExecutionReader : public JsonFields {
public:
  using JsonFields::JsonFields;

  /// A plan size; with `divided` (grid sizes) also "GT/64", ceil(G x T /
  /// 64).
  PlanDim readDim(const json &value, const std::string &path,
                  bool divided = false) {
    const char *expected =
        divided ? "a non-negative integer or a size such as \"T\", "
                  "\"2T\" or \"2T/64\" (T, R, S, N or M)"
                : "a non-negative integer or a size such as \"T\" or "
                  "\"2T\" (T, R, S, N or M)";
    if (isCount(value, false))
      return {0, value.get<int64_t>()};
    if (!value.is_string())
      fail(path, std::string("expected ") + expected + ", got " + show(value));
    std::string text = value.get<std::string>();
    int64_t divisor = 1;
    if (size_t slash = text.find('/'); divided && slash != std::string::npos) {
      std::string digits = text.substr(slash + 1);
      if (digits.empty() || digits.size() > 9 ||
          digits.find_first_not_of("0123456789") != std::string::npos ||
          std::stoll(digits) == 0)
        fail(path,
             std::string("expected ") + expected + ", got " + show(value));
      divisor = std::stoll(digits);
      text = text.substr(0, slash);
    }
    if (text.empty() || std::string("TRSNM").find(text.back()) ==
                            std::string::npos)
      fail(path, std::string("expected ") + expected + ", got " + show(value));
    int64_t factor = 1;
    if (text.size() > 1) {
      std::string digits = text.substr(0, text.size() - 1);
      if (digits.size() > 9 ||
          digits.find_first_not_of("0123456789") != std::string::npos)
        fail(path,
             std::string("expected ") + expected + ", got " + show(value));
      factor = std::stoll(digits);
    }
    return {text.back(), factor, divisor};
  }

  ExecutionInfo read(const json &plan, const std::string &path) {
    ExecutionInfo info;
    info.blockSize = integer(plan, path, "block_size", true);
    info.kvLayers = integer(plan, path, "kv_layers", false);
    info.kvWidth = integer(plan, path, "kv_width", true);
    std::string kvDtype = string(plan, path, "kv_dtype");
    if (!parseArtifactDType(kvDtype, info.kvDtype))
      fail(path + ".kv_dtype", "expected a dtype, got " + show(json(kvDtype)));
    const json &buffers = array(plan, path, "buffers");
    for (size_t i = 0; i < buffers.size(); ++i) {
      std::string at = path + ".buffers[" + std::to_string(i) + "]";
      const json &entry = buffers[i];
      if (!entry.is_object())
        fail(at, "expected an object");
      expect(integer(entry, at, "id", false), static_cast<int64_t>(i),
             at + ".id", "");
      BufferInfo buffer;
      std::string kind = string(entry, at, "kind");
      if (kind == "input")
        buffer.kind = BufferInfo::Kind::Input;
      else if (kind == "weight")
        buffer.kind = BufferInfo::Kind::Weight;
      else if (kind == "activation")
        buffer.kind = BufferInfo::Kind::Activation;
      else if (kind == "k_cache")
        buffer.kind = BufferInfo::Kind::KCache;
      else if (kind == "v_cache")
        buffer.kind = BufferInfo::Kind::VCache;
      else if (kind == "group_rank")
        buffer.kind = BufferInfo::Kind::GroupRank;
      else
        fail(at + ".kind", "expected \"input\", \"weight\", "
                           "\"activation\", \"k_cache\", \"v_cache\" or "
                           "\"group_rank\", got " + show(json(kind)));
      if (buffer.kind == BufferInfo::Kind::GroupRank)
        buffer.divisor = integer(entry, at, "divisor", true);
      if (buffer.kind == BufferInfo::Kind::Input ||
          buffer.kind == BufferInfo::Kind::Weight)
        buffer.name = string(entry, at, "name");
      if (buffer.kind == BufferInfo::Kind::KCache ||
          buffer.kind == BufferInfo::Kind::VCache) {
        buffer.layer = integer(entry, at, "layer", false);
        if (buffer.layer >= info.kvLayers)
          fail(at + ".layer", "expected a layer below kv_layers (" +
                                  std::to_string(info.kvLayers) + "), got " +
                                  std::to_string(buffer.layer));
      }
      std::string dtype = string(entry, at, "dtype");
      if (!parseArtifactDType(dtype, buffer.dtype))
        fail(at + ".dtype", "expected a dtype, got " + show(json(dtype)));
      const json &shape = array(entry, at, "shape");
      for (size_t d = 0; d < shape.size(); ++d)
        buffer.shape.push_back(
            readDim(shape[d], at + ".shape[" + std::to_string(d) + "]"));
      info.buffers.push_back(std::move(buffer));
    }
    auto bufferId = [&](const json &object, const std::string &at,
                        const char *key) {
      int64_t id = integer(object, at, key, false);
      if (id >= static_cast<int64_t>(info.buffers.size()))
        fail(at + "." + key, "expected a buffer id below " +
                                 std::to_string(info.buffers.size()) +
                                 ", got " + std::to_string(id));
      return id;
    };
    const json &steps = array(plan, path, "steps");
    for (size_t i = 0; i < steps.size(); ++i) {
      std::string at = path + ".steps[" + std::to_string(i) + "]";
      const json &entry = steps[i];
      if (!entry.is_object())
        fail(at, "expected an object");
      StepInfo step;
      readGuard(entry, at, step);
      std::string kind = string(entry, at, "kind");
      if (kind == "kernel") {
        step.kind = StepInfo::Kind::Kernel;
        step.kernel = string(entry, at, "kernel");
        step.args = integers(entry, at, "args", false);
        for (size_t a = 0; a < step.args.size(); ++a)
          if (step.args[a] >= static_cast<int64_t>(info.buffers.size()))
            fail(at + ".args[" + std::to_string(a) + "]",
                 "expected a buffer id below " +
                     std::to_string(info.buffers.size()) + ", got " +
                     std::to_string(step.args[a]));
        if (entry.contains("launches"))
          readLaunches(entry, at, step);
      } else if (kind == "gemm") {
        step.kind = StepInfo::Kind::Gemm;
        step.a = bufferId(entry, at, "a");
        step.b = bufferId(entry, at, "b");
        step.c = bufferId(entry, at, "c");
        for (int64_t id : {step.a, step.b, step.c})
          if (info.buffers[id].shape.size() != 2)
            fail(at, "GEMM buffer " + std::to_string(id) +
                         " is not two-dimensional");
      } else if (kind == "grouped_gemm") {
        readGroupedGemm(entry, at, info, bufferId, step);
      } else if (kind == "all_reduce" || kind == "all_gather") {
        step.kind = kind == "all_reduce" ? StepInfo::Kind::AllReduce
                                         : StepInfo::Kind::AllGather;
        step.a = bufferId(entry, at, "a");
        step.c = bufferId(entry, at, "c");
        if (step.kind == StepInfo::Kind::AllGather) {
          step.dim = integer(entry, at, "dim", false);
          if (step.dim >= static_cast<int64_t>(info.buffers[step.a].shape.size()))
            fail(at + ".dim", "expected a dimension of buffer " +
                                  std::to_string(step.a));
        }
      } else if (kind == "expert_exchange") {
        step.kind = StepInfo::Kind::ExpertExchange;
        step.a = bufferId(entry, at, "a");
        step.c = bufferId(entry, at, "c");
        step.offsets = bufferId(entry, at, "offsets");
        step.permutation = bufferId(entry, at, "permutation");
        step.topK = integer(entry, at, "top_k", false);
        if (step.topK < 1)
          fail(at + ".top_k", "expected a positive integer, got " +
                                  std::to_string(step.topK));
        std::string direction = string(entry, at, "direction");
        if (direction != "to_experts" && direction != "to_tokens")
          fail(at + ".direction", "expected \"to_experts\" or "
                                  "\"to_tokens\", got " +
                                      show(json(direction)));
        step.toExperts = direction == "to_experts";
        for (int64_t id : {step.a, step.c})
          if (info.buffers[id].shape.size() != 2)
            fail(at, "exchanged buffer " + std::to_string(id) +
                         " is not two-dimensional");
        for (int64_t id : {step.offsets, step.permutation})
          if (info.buffers[id].dtype != DType::I32 ||
              info.buffers[id].shape.size() != 1)
            fail(at, "routing buffer " + std::to_string(id) +
                         " is not a vector of i32");
      } else if (kind == "all_gather_tokens") {
        step.kind = StepInfo::Kind::AllGatherTokens;
        step.a = bufferId(entry, at, "a");
        step.c = bufferId(entry, at, "c");
        for (int64_t id : {step.a, step.c})
          if (info.buffers[id].shape.size() != 2)
            fail(at, "gathered buffer " + std::to_string(id) +
                         " is not two-dimensional");
      } else if (kind == "send" || kind == "recv") {
        step.kind = kind == "send" ? StepInfo::Kind::Send : StepInfo::Kind::Recv;
        (kind == "send" ? step.a : step.c) =
            bufferId(entry, at, kind == "send" ? "a" : "c");
        step.stage = integer(entry, at, "stage", false);
      } else {
        fail(at + ".kind", "expected \"kernel\", \"gemm\", "
                           "\"grouped_gemm\", \"all_reduce\", \"all_gather\", "
                           "\"expert_exchange\", \"all_gather_tokens\", "
                           "\"send\" or \"recv\", got " +
                               show(json(kind)));
      }
      info.steps.push_back(std::move(step));
    }
    const json &inputs = object(plan, path, "inputs");
    std::string at = path + ".inputs";
    info.tokens = bufferId(inputs, at, "tokens");
    info.positions = bufferId(inputs, at, "positions");
    info.logitRows = bufferId(inputs, at, "logit_rows");
    info.slotMapping = bufferId(inputs, at, "slot_mapping");
    info.tokenSeq = bufferId(inputs, at, "token_seq");
    info.blockTables = bufferId(inputs, at, "block_tables");
    const json &outputs = object(plan, path, "outputs");
    if (outputs.contains("logits"))
      info.logits = bufferId(outputs, path + ".outputs", "logits");
    return info;
  }

  /// The optional token-count range a step runs in.
  void readGuard(const json &entry, const std::string &at, StepInfo &step) {
    if (entry.contains("from_tokens"))
      step.fromTokens = integer(entry, at, "from_tokens", false);
    if (entry.contains("below_tokens"))
      step.belowTokens = integer(entry, at, "below_tokens", true);
    if (entry.contains("from_run_tokens"))
      step.fromRunTokens = integer(entry, at, "from_run_tokens", false);
    if (entry.contains("below_run_tokens"))
      step.belowRunTokens = integer(entry, at, "below_run_tokens", true);
    if (step.belowRunTokens >= 0 && step.belowRunTokens <= step.fromRunTokens)
      fail(at, "below_run_tokens (" + std::to_string(step.belowRunTokens) +
                   ") must exceed from_run_tokens (" +
                   std::to_string(step.fromRunTokens) + ")");
    if (step.belowTokens >= 0 && step.belowTokens <= step.fromTokens)
      fail(at, "below_tokens (" + std::to_string(step.belowTokens) +
                   ") must exceed from_tokens (" +
                   std::to_string(step.fromTokens) + ")");
  }

  /// c = a times b[expert]^T, row run by row run of the experts in offsets.
  template <typename BufferId>
  void readGroupedGemm(const json &entry, const std::string &at,
                       const ExecutionInfo &info, BufferId &bufferId,
                       StepInfo &step) {
    step.kind = StepInfo::Kind::GroupedGemm;
    step.a = bufferId(entry, at, "a");
    step.b = bufferId(entry, at, "b");
    step.c = bufferId(entry, at, "c");
    step.offsets = bufferId(entry, at, "offsets");
    if (entry.contains("group"))
      step.group = bufferId(entry, at, "group");
    const BufferInfo &a = info.buffers[step.a], &b = info.buffers[step.b],
                     &c = info.buffers[step.c],
                     &offsets = info.buffers[step.offsets];
    if (b.kind != BufferInfo::Kind::Weight || b.shape.size() != 3)
      fail(at + ".b", "expected a weight [experts, N, K], buffer " +
                          std::to_string(step.b) + " is not");
    if (a.shape.size() != 2 || c.shape.size() != 2)
      fail(at, "grouped GEMM rows (buffers " + std::to_string(step.a) +
                   " and " + std::to_string(step.c) +
                   ") must be two-dimensional");
    auto columns = [](const BufferInfo &buffer) {
      return buffer.shape[1].symbol ? -1 : buffer.shape[1].factor;
    };
    if (b.shape[2].symbol || columns(a) != b.shape[2].factor ||
        b.shape[1].symbol || columns(c) != b.shape[1].factor)
      fail(at, "grouped GEMM shapes do not agree: a (buffer " +
                   std::to_string(step.a) + ") must be [M, K] and c (buffer " +
                   std::to_string(step.c) + ") [M, N] for b [experts, N, K]");
    if (offsets.dtype != DType::I32 || offsets.shape.size() != 1 ||
        offsets.shape[0].symbol || offsets.shape[0].factor < 2)
      fail(at + ".offsets", "expected an i32 vector [experts + 1], buffer " +
                                std::to_string(step.offsets) + " is not");
    if (step.group >= 0 &&
        info.buffers[step.group].kind != BufferInfo::Kind::GroupRank)
      fail(at + ".group", "expected a group_rank buffer, buffer " +
                              std::to_string(step.group) + " is not");
  }

  void readLaunches(const json &entry, const std::string &at, StepInfo &step) {
    const json &launches = array(entry, at, "launches");
    for (size_t l = 0; l < launches.size(); ++l) {
      std::string where = at + ".launches[" + std::to_string(l) + "]";
      const json &launch = launches[l];
      if (!launch.is_object())
        fail(where, "expected an object");
      LaunchInfo info;
      info.module = string(launch, where, "module");
      info.function = string(launch, where, "function");
      const json &grid = array(launch, where, "grid");
      std::vector<int64_t> block = integers(launch, where, "block", true);
      if (grid.size() != 3)
        fail(where + ".grid", "expected 3 sizes");
      if (block.size() != 3)
        fail(where + ".block", "expected 3 sizes");
      for (int i = 0; i < 3; ++i) {
        info.grid[i] =
            readDim(grid[i], where + ".grid[" + std::to_string(i) + "]",
                    /*divided=*/true);
        info.block[i] = block[i];
      }
      info.params = integers(launch, where, "params", false);
      for (size_t p = 0; p < info.params.size(); ++p)
        if (info.params[p] >= static_cast<int64_t>(step.args.size()))
          fail(where + ".params[" + std::to_string(p) + "]",
               "expected an argument index below " +
                   std::to_string(step.args.size()) + ", got " +
                   std::to_string(info.params[p]));
      step.launches.push_back(std::move(info));
    }
  }
};
} // namespace

ExecutionInfo moert::readExecutionPlan(const std::string &name,
                                       const json &plan,
                                       const std::string &path) {
  return ExecutionReader(name).read(plan, path);
}
