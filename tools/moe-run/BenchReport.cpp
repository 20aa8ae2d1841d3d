//===- BenchReport.cpp - moe-run bench report -----------------------------===//
//
// The report of `moe-run ARTIFACT bench`: the summary of a run and its
// percentiles, the text report on stdout and the JSON report.
//
// Reports: generated and total (prompt + generated) tokens per second over
// the run's duration (start to the last finish), per request time to first
// token (arrival to first token), time per output token ((last - first
// token) / (output - 1), requests of two or more tokens) and latency
// (arrival to finish) as p50/p99 (nearest rank), KV blocks (peak, and the
// mean fraction held by the running sequences, weighted by the time the
// steps ran, over the run's duration), preemptions, steps.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/BenchInternal.h"
#include "tools/moe-run/TrafficReport.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace moert::bench {

//===----------------------------------------------------------------------===//
// Report
//===----------------------------------------------------------------------===//

namespace {

/// Nearest-rank percentile of `values` (sorted); NaN when empty.
double percentile(const std::vector<double> &sorted, double p) {
  if (sorted.empty())
    return std::nan("");
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

} // namespace

Summary summarize(const std::vector<WorkItem> &work, const RunResult &r,
                  int64_t numBlocks) {
  Summary s;
  for (size_t i = 0; i < work.size(); ++i) {
    const RequestRecord &record = r.records[i];
    if (record.status == Status::Rejected) {
      if (s.rejected++ == 0)
        s.firstRejection = record.reason;
      continue;
    }
    if (record.status != Status::Finished)
      continue;
    ++s.finished;
    s.promptTokens += static_cast<int64_t>(work[i].prompt.size());
    s.generatedTokens += static_cast<int64_t>(record.output.size());
    s.ttft.push_back(record.firstToken - work[i].arrival);
    s.latency.push_back(record.finish - work[i].arrival);
    if (record.output.size() >= 2)
      s.tpot.push_back((record.lastToken - record.firstToken) /
                       static_cast<double>(record.output.size() - 1));
  }
  for (std::vector<double> *v : {&s.ttft, &s.tpot, &s.latency})
    std::sort(v->begin(), v->end());
  // Weighted by time: the blocks a step's sequences held, for as long as it
  // ran; none while the run waited for arrivals (or sampled between steps).
  for (const StepSample &step : r.timeline)
    s.meanBlockFraction +=
        static_cast<double>(step.blocks) / numBlocks * (step.end - step.start);
  if (r.duration > 0)
    s.meanBlockFraction = std::min(1.0, s.meanBlockFraction / r.duration);
  if (r.duration > 0) {
    s.generatedPerSecond = s.generatedTokens / r.duration;
    s.totalPerSecond = (s.promptTokens + s.generatedTokens) / r.duration;
  }
  return s;
}

namespace {

std::string formatMs(double seconds) {
  if (std::isnan(seconds))
    return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f ms", seconds * 1e3);
  return text;
}

std::string rateText(double rate) {
  if (!std::isfinite(rate))
    return "all at once (--rate=inf)";
  char text[64];
  std::snprintf(text, sizeof text, "Poisson arrivals at %g requests/s", rate);
  return text;
}

std::string samplingText(const SamplingParams &p) {
  if (!(p.temperature > 0))
    return "greedy";
  char text[96];
  std::snprintf(text, sizeof text, "temperature %g, top-k %d, top-p %g",
                p.temperature, p.topK, p.topP);
  return text;
}

} // namespace

void printReport(const BenchOptions &o, const RunInfo &info, const RunResult &r,
                 const Summary &s) {
  bool isStatic = o.mode == Mode::Static;
  std::printf("moe-run bench: %s (%s), %s\n", info.modelName.c_str(),
              info.target.c_str(),
              isStatic ? "static batching" : "continuous batching");
  std::printf("workload: %lld requests, %s, prompt %s, output %s, seed "
              "%llu, %s\n",
              static_cast<long long>(o.requests), rateText(o.rate).c_str(),
              o.promptLength.text.c_str(), o.outputLength.text.c_str(),
              static_cast<unsigned long long>(o.seed),
              samplingText(o.sampling).c_str());
  if (isStatic)
    std::printf("limits: batches of %lld, %lld tokens per prefill step, %lld "
                "KV blocks of %lld tokens\n",
                static_cast<long long>(o.batch),
                static_cast<long long>(o.maxTokensPerStep),
                static_cast<long long>(info.numBlocks),
                static_cast<long long>(info.blockSize));
  else
    std::printf("limits: %lld tokens per step, %lld running, %lld KV blocks "
                "of %lld tokens\n",
                static_cast<long long>(o.maxTokensPerStep),
                static_cast<long long>(o.maxRunning),
                static_cast<long long>(info.numBlocks),
                static_cast<long long>(info.blockSize));
  std::printf("requests: %lld finished, %lld rejected",
              static_cast<long long>(s.finished),
              static_cast<long long>(s.rejected));
  if (s.rejected)
    std::printf(" (first: %s)", s.firstRejection.c_str());
  std::printf("\n");
  std::printf("duration: %.4f s\n", r.duration);
  std::printf("throughput: %.1f generated tokens/s, %.1f total tokens/s "
              "(prompt + generated)\n",
              s.generatedPerSecond, s.totalPerSecond);
  std::printf("tokens: %lld prompt, %lld generated; the model ran %lld "
              "(%lld prefill, %lld decode; %lld recomputed, %lld padding)\n",
              static_cast<long long>(s.promptTokens),
              static_cast<long long>(s.generatedTokens),
              static_cast<long long>(r.prefillTokens + r.decodeTokens),
              static_cast<long long>(r.prefillTokens),
              static_cast<long long>(r.decodeTokens),
              static_cast<long long>(r.recomputedTokens),
              static_cast<long long>(r.paddingTokens));
  int64_t modelTokens =
      r.prefillTokens + r.decodeTokens + r.verifiedDraftTokens;
  std::printf("steps: %lld (%.1f tokens per step)",
              static_cast<long long>(r.steps),
              r.steps ? static_cast<double>(modelTokens) / r.steps : 0.0);
  if (isStatic)
    std::printf(" in %lld batches", static_cast<long long>(r.batches));
  std::printf("\n");
  std::printf("time to first token: p50 %s, p99 %s\n",
              formatMs(percentile(s.ttft, 50)).c_str(),
              formatMs(percentile(s.ttft, 99)).c_str());
  std::printf("time per output token: p50 %s, p99 %s\n",
              formatMs(percentile(s.tpot, 50)).c_str(),
              formatMs(percentile(s.tpot, 99)).c_str());
  std::printf("request latency: p50 %s, p99 %s\n",
              formatMs(percentile(s.latency, 50)).c_str(),
              formatMs(percentile(s.latency, 99)).c_str());
  std::printf("KV blocks: peak %lld of %lld (%.1f%%), mean %.1f%% of the "
              "time\n",
              static_cast<long long>(r.peakBlocks),
              static_cast<long long>(info.numBlocks),
              100.0 * r.peakBlocks / info.numBlocks,
              100.0 * s.meanBlockFraction);
  std::printf("preemptions: %lld\n", static_cast<long long>(r.preemptions));
  if (!o.draft.empty()) {
    std::printf("speculation: %lld draft tokens (%s), %lld of %lld steps "
                "speculated, %lld draft tokens verified\n",
                static_cast<long long>(o.draftTokens),
                o.speculateAlways ? "always" : "auto",
                static_cast<long long>(r.speculativeSteps),
                static_cast<long long>(r.steps),
                static_cast<long long>(r.verifiedDraftTokens));
    // Position j: verifications whose first j drafts were all accepted,
    // of those that proposed a j-th draft.
    std::printf("draft acceptance by position:");
    for (size_t j = 0; j < r.draftProposed.size(); ++j) {
      std::printf(" %zu: %lld/%lld", j + 1,
                  static_cast<long long>(r.draftAccepted[j]),
                  static_cast<long long>(r.draftProposed[j]));
      if (r.draftProposed[j])
        std::printf(" (%.1f%%)",
                    100.0 * r.draftAccepted[j] / r.draftProposed[j]);
    }
    std::printf("\n");
  }
  // A partitioned plan: what its ranks sent per decode step.
  std::fputs(decodeTrafficText(info.plan, r.traffic,
                               "communication: " + info.ranks + "; ")
                 .c_str(),
             stdout);
  std::fflush(stdout);
}

namespace {

Json number(double value) {
  return std::isfinite(value) ? Json(value) : Json(nullptr);
}

Json distribution(const std::vector<double> &sorted) {
  Json j;
  j["count"] = sorted.size();
  double sum = 0;
  for (double v : sorted)
    sum += v;
  j["mean"] = sorted.empty() ? Json(nullptr) : Json(sum / sorted.size());
  j["p50"] = number(percentile(sorted, 50));
  j["p90"] = number(percentile(sorted, 90));
  j["p99"] = number(percentile(sorted, 99));
  j["max"] = sorted.empty() ? Json(nullptr) : Json(sorted.back());
  return j;
}

} // namespace

Json toJson(const BenchOptions &o, const RunInfo &info,
            const std::vector<WorkItem> &work, const RunResult &r,
            const Summary &s) {
  bool isStatic = o.mode == Mode::Static;
  Json j;
  Json &config = j["config"];
  config["artifact"] = info.artifactPath;
  config["model"] = info.modelName;
  config["target"] = info.target;
  config["mode"] = isStatic ? "static" : "continuous";
  config["requests"] = o.requests;
  config["rate"] = std::isfinite(o.rate) ? Json(o.rate) : Json("inf");
  config["prompt_len"] = o.promptLength.text;
  config["output_len"] = o.outputLength.text;
  config["seed"] = o.seed;
  config["temperature"] = o.sampling.temperature;
  config["top_k"] = o.sampling.topK;
  config["top_p"] = o.sampling.topP;
  config["max_tokens_per_step"] = o.maxTokensPerStep;
  if (isStatic)
    config["batch"] = o.batch;
  else
    config["max_running"] = o.maxRunning;
  config["kv_blocks"] = info.numBlocks;
  config["block_size"] = info.blockSize;
  config["max_context"] = info.maxContext;
  config["vocab_size"] = info.vocab;
  if (o.checkpoint.empty())
    config["weights_seed"] = o.weightsSeed;
  else
    config["weights"] = o.checkpoint;
  if (!o.draft.empty()) {
    config["draft"] = o.draft;
    config["draft_tokens"] = o.draftTokens;
    config["speculate"] = o.speculateAlways ? "always" : "auto";
    if (o.draftCheckpoint.empty())
      config["draft_weights_seed"] = o.draftWeightsSeed;
    else
      config["draft_weights"] = o.draftCheckpoint;
  }

  Json &summary = j["summary"];
  summary["duration_s"] = r.duration;
  summary["requests"] = {{"total", o.requests},
                         {"finished", s.finished},
                         {"rejected", s.rejected}};
  summary["tokens"] = {{"prompt", s.promptTokens},
                       {"generated", s.generatedTokens},
                       {"model_prefill", r.prefillTokens},
                       {"model_decode", r.decodeTokens},
                       {"draft_verified", r.verifiedDraftTokens},
                       {"recomputed", r.recomputedTokens},
                       {"padding", r.paddingTokens}};
  summary["throughput"] = {{"generated_tokens_per_s", s.generatedPerSecond},
                           {"total_tokens_per_s", s.totalPerSecond}};
  summary["steps"] = r.steps;
  if (isStatic)
    summary["batches"] = r.batches;
  summary["ttft_s"] = distribution(s.ttft);
  summary["tpot_s"] = distribution(s.tpot);
  summary["latency_s"] = distribution(s.latency);
  summary["kv_blocks"] = {{"total", info.numBlocks},
                          {"peak", r.peakBlocks},
                          {"mean_fraction", s.meanBlockFraction}};
  summary["preemptions"] = r.preemptions;
  // A partitioned plan: per stage, the bytes per decode step its busiest
  // rank sent within the stage and to the next, and all its ranks together
  // (the text report's figures); null for one rank.
  if (r.traffic.size() < 2) {
    summary["communication"] = nullptr;
  } else {
    Json stages = Json::array();
    double total = 0;
    std::vector<StageTraffic> byStage = trafficByStage(info.plan, r.traffic);
    for (size_t stage = 0; stage < byStage.size(); ++stage) {
      stages.push_back({{"stage", stage},
                        {"within_stage", byStage[stage].withinStage},
                        {"to_next_stage", byStage[stage].toNextStage},
                        {"all_ranks", byStage[stage].total}});
      total += byStage[stage].total;
    }
    summary["communication"] = {
        {"ranks", r.traffic.size()},
        {"decode_steps", r.traffic[0].steps},
        {"bytes_per_decode_step", stages},
        {"all_ranks_bytes_per_decode_step",
         byStage.empty() ? Json(nullptr) : Json(total)}};
  }
  // Speculative decoding: per draft position j, the verifications that
  // proposed a j-th draft and those that accepted the first j; null
  // without --draft.
  if (o.draft.empty()) {
    summary["speculative"] = nullptr;
  } else {
    Json positions = Json::array();
    for (size_t j = 0; j < r.draftProposed.size(); ++j)
      positions.push_back(
          {{"position", j + 1},
           {"proposed", r.draftProposed[j]},
           {"accepted", r.draftAccepted[j]},
           {"rate", r.draftProposed[j]
                        ? Json(static_cast<double>(r.draftAccepted[j]) /
                               r.draftProposed[j])
                        : Json(nullptr)}});
    summary["speculative"] = {
        {"draft", o.draft},
        {"draft_tokens", o.draftTokens},
        {"speculate", o.speculateAlways ? "always" : "auto"},
        {"speculative_steps", r.speculativeSteps},
        {"verifications", r.verifications},
        {"verified_draft_tokens", r.verifiedDraftTokens},
        {"draft_forwards", r.draftForwards},
        {"draft_fed_tokens", r.draftFedTokens},
        {"draft_evictions", r.draftEvictions},
        {"positions", positions}};
  }

  Json requests = Json::array();
  for (size_t i = 0; i < work.size(); ++i) {
    const RequestRecord &record = r.records[i];
    Json q;
    q["id"] = i;
    q["arrival_s"] = work[i].arrival;
    q["prompt_tokens"] = work[i].prompt.size();
    q["requested_output_tokens"] = work[i].outputTokens;
    q["status"] = record.status == Status::Finished   ? "finished"
                  : record.status == Status::Rejected ? "rejected"
                                                      : "unfinished";
    if (record.status == Status::Rejected) {
      q["reason"] = record.reason;
    } else {
      q["output_tokens"] = record.output.size();
      q["first_token_s"] = record.firstToken;
      q["finish_s"] = record.finish;
      q["ttft_s"] = record.firstToken - work[i].arrival;
      q["tpot_s"] = record.output.size() >= 2
                        ? Json((record.lastToken - record.firstToken) /
                               (record.output.size() - 1))
                        : Json(nullptr);
      q["latency_s"] = record.finish - work[i].arrival;
      if (isStatic)
        q["batch"] = record.batch;
      q["output"] = record.output;
    }
    requests.push_back(std::move(q));
  }
  j["requests"] = std::move(requests);

  Json timeline = Json::array();
  for (const StepSample &step : r.timeline)
    timeline.push_back({step.start, step.end, step.tokens, step.generated,
                        step.blocks, step.running});
  j["timeline_columns"] = {"start_s",   "end_s",     "tokens",
                           "generated", "kv_blocks", "running"};
  j["timeline"] = std::move(timeline);
  return j;
}

std::string formatJson(const Json &j) {
  std::string out = "{";
  bool firstKey = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out += firstKey ? "\n" : ",\n";
    firstKey = false;
    out += "  " + Json(it.key()).dump() + ": ";
    if (it->is_array() && !it->empty() && it->front().is_structured()) {
      out += "[";
      for (size_t i = 0; i < it->size(); ++i)
        out += (i ? ",\n    " : "\n    ") + (*it)[i].dump();
      out += "\n  ]";
    } else if (it->is_object()) {
      // Indented by two more spaces than dump() would.
      std::string text = it->dump(2), indented;
      for (char c : text) {
        indented += c;
        if (c == '\n')
          indented += "  ";
      }
      out += indented;
    } else {
      out += it->dump();
    }
  }
  return out + "\n}\n";
}

} // namespace moert::bench
