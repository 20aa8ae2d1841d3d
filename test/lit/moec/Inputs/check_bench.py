"""Checks what `moe-run ART bench` writes (bench.test).

  check_bench.py run RUN.json [--context]
      Checks one run's --json: every request present once, finished ones
      with exactly the requested output tokens (in the vocabulary) and
      consistent timings, rejected ones with a reason (with --context:
      rejected exactly when prompt + output exceed the model's context),
      the summary agreeing with the records and the per-step timeline,
      and a partitioned plan's bytes per decode step adding up by stage.
      Prints one line of facts for FileCheck.
  check_bench.py compare CONTINUOUS.json STATIC.json
      The same workload in both modes: the same requests and prompt/output
      lengths, static batches of at most --batch requests in arrival order,
      the static step count as static batching predicts it, and fewer
      steps for continuous batching.
  check_bench.py same FIRST.json SECOND.json
      Prints how many requests generated the same tokens in both runs.
  check_bench.py svg FILE.svg
      The plot is well-formed SVG with the two panels' lines.
  check_bench.py status N COMMAND...
      Runs COMMAND, fails unless it exits with status N, and prints its
      stderr (the error message) for FileCheck.
"""

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def load(path):
    with open(path) as f:
        return json.load(f)


def check_run(path, context):
    run = load(path)
    config, summary = run["config"], run["summary"]
    requests = run["requests"]
    check(len(requests) == config["requests"], "requests missing")
    check([r["id"] for r in requests] == list(range(len(requests))),
          "request ids are not 0..N-1 in order")
    arrivals = [r["arrival_s"] for r in requests]
    check(arrivals == sorted(arrivals), "arrivals out of order")
    vocab = config["vocab_size"]
    finished = [r for r in requests if r["status"] == "finished"]
    rejected = [r for r in requests if r["status"] == "rejected"]
    check(len(finished) + len(rejected) == len(requests),
          "a request neither finished nor rejected")
    for r in finished:
        n = r["requested_output_tokens"]
        check(r["output_tokens"] == n and len(r["output"]) == n,
              "request %d: %d tokens for %d requested"
              % (r["id"], r["output_tokens"], n))
        check(all(0 <= t < vocab for t in r["output"]),
              "request %d: token outside the vocabulary" % r["id"])
        check(r["arrival_s"] <= r["first_token_s"] <= r["finish_s"],
              "request %d: times out of order" % r["id"])
        check(math.isclose(r["ttft_s"], r["first_token_s"] - r["arrival_s"],
                           abs_tol=1e-9), "request %d: ttft" % r["id"])
        check(math.isclose(r["latency_s"], r["finish_s"] - r["arrival_s"],
                           abs_tol=1e-9), "request %d: latency" % r["id"])
        check((r["tpot_s"] is None) == (n < 2), "request %d: tpot" % r["id"])
    for r in rejected:
        check(r.get("reason"), "request %d: rejected without a reason" % r["id"])
        check("output" not in r, "request %d: rejected with output" % r["id"])
    if context:
        limit = config["max_context"]
        for r in requests:
            too_long = r["prompt_tokens"] + r["requested_output_tokens"] > limit
            check(too_long == (r["status"] == "rejected"),
                  "request %d: rejected is %s, too long is %s"
                  % (r["id"], r["status"] == "rejected", too_long))

    counts = summary["requests"]
    check(counts == {"total": len(requests), "finished": len(finished),
                     "rejected": len(rejected)}, "summary request counts")
    tokens = summary["tokens"]
    check(tokens["prompt"] == sum(r["prompt_tokens"] for r in finished),
          "summary prompt tokens")
    check(tokens["generated"] == sum(r["output_tokens"] for r in finished),
          "summary generated tokens")
    check(tokens["model_prefill"] >= tokens["prompt"], "prefill < prompts")
    check(summary["ttft_s"]["count"] == len(finished), "ttft count")
    check(summary["latency_s"]["count"] == len(finished), "latency count")
    for name in ("ttft_s", "tpot_s", "latency_s"):
        d = summary[name]
        if d["count"]:
            check(d["p50"] <= d["p99"] <= d["max"], name + " percentiles")
    if finished:
        rate = tokens["generated"] / summary["duration_s"]
        check(math.isclose(summary["throughput"]["generated_tokens_per_s"],
                           rate, rel_tol=1e-6), "throughput")

    timeline = run["timeline"]
    check(run["timeline_columns"] ==
          ["start_s", "end_s", "tokens", "generated", "kv_blocks", "running"],
          "timeline columns")
    check(all(s[0] <= s[1] for s in timeline), "a step ends before it starts")
    check(all(a[1] <= b[0] for a, b in zip(timeline, timeline[1:])),
          "steps overlap")
    timeline = [s[1:] for s in timeline]  # end, tokens, generated, ...
    check(len(timeline) == summary["steps"], "one timeline entry per step")
    check(sum(s[1] for s in timeline) ==
          tokens["model_prefill"] + tokens["model_decode"] +
          tokens["draft_verified"], "timeline tokens")
    generated = [s[2] for s in timeline]
    check(generated == sorted(generated), "generated tokens decrease")
    check(not timeline or generated[-1] == tokens["generated"],
          "timeline ends short of the generated tokens")
    kv = summary["kv_blocks"]
    check(kv["total"] == config["kv_blocks"], "kv total")
    check(all(0 < s[3] <= kv["peak"] for s in timeline), "kv blocks > peak")
    check(kv["peak"] <= kv["total"], "kv peak > total")
    check(0 <= kv["mean_fraction"] <= kv["peak"] / kv["total"] + 1e-9,
          "kv mean fraction above the peak")
    if config["mode"] == "static":
        check(summary["preemptions"] == 0, "static batching preempted")
        check(all(s[4] <= config["batch"] for s in timeline), "batch width")
    else:
        check(all(s[4] <= config["max_running"] for s in timeline),
              "more running than --max-running")
        check(tokens["padding"] == 0, "continuous batching padded")
    speculative = summary["speculative"]
    spec = ""
    if speculative is not None:
        positions = speculative["positions"]
        check(len(positions) == config["draft_tokens"], "draft positions")
        check([p["position"] for p in positions] ==
              list(range(1, len(positions) + 1)), "position numbers")
        accepted = [p["accepted"] for p in positions]
        proposed = [p["proposed"] for p in positions]
        check(all(a <= n for a, n in zip(accepted, proposed)),
              "more drafts accepted than proposed")
        check(accepted == sorted(accepted, reverse=True),
              "acceptance of the first j drafts grows with j")
        check(speculative["verifications"] == proposed[0], "verifications")
        check(sum(proposed) == tokens["draft_verified"],
              "verified drafts are not the proposed ones")
        check(speculative["speculative_steps"] <= summary["steps"],
              "speculative steps")
        spec = ", %d draft positions" % len(positions)
    else:
        check(tokens["draft_verified"] == 0, "drafts verified without a draft")
    communication = summary["communication"]
    comm = ""
    if communication is not None:
        steps = communication["decode_steps"]
        check(0 <= steps <= summary["steps"], "decode steps")
        stages = communication["bytes_per_decode_step"]
        total = communication["all_ranks_bytes_per_decode_step"]
        check((steps == 0) == (not stages) == (total is None),
              "bytes per decode step without decode steps, or none with")
        check([s["stage"] for s in stages] == list(range(len(stages))),
              "stage numbers")
        check(all(s["within_stage"] + s["to_next_stage"] <= s["all_ranks"] +
                  1e-6 for s in stages), "a rank sent more than its stage")
        check(not stages or stages[-1]["to_next_stage"] == 0,
              "the last stage sent to a next one")
        check(not stages or math.isclose(
            sum(s["all_ranks"] for s in stages), total, rel_tol=1e-9),
              "the stages' bytes do not add up to all the ranks'")
        comm = ", %d ranks, %d decode steps" % (communication["ranks"], steps)
    print("%s: %d requests, %d finished, %d rejected, output lengths ok, "
          "%s, %d steps%s%s"
          % (config["mode"], len(requests), len(finished), len(rejected),
             "preempted" if summary["preemptions"] else "no preemption",
             summary["steps"], spec, comm))


def compare(continuous_path, static_path):
    c, s = load(continuous_path), load(static_path)
    key = lambda run: [(r["prompt_tokens"], r["requested_output_tokens"])
                       for r in run["requests"]]
    check(key(c) == key(s), "the two modes ran different workloads")
    # Static batches: consecutive requests in arrival order, at most
    # --batch each; per batch ceil(prompt tokens / budget) prefill steps
    # and then one decode step per token after the first of its longest.
    batch, budget = s["config"]["batch"], s["config"]["max_tokens_per_step"]
    batches = {}
    for r in s["requests"]:
        if r["status"] == "finished":
            batches.setdefault(r["batch"], []).append(r)
    check(sorted(batches) == list(range(len(batches))), "batch numbering")
    order = [r["id"] for b in sorted(batches) for r in batches[b]]
    check(order == sorted(order), "batches not in arrival order")
    check(all(len(b) <= batch for b in batches.values()), "batch too large")
    expected = sum(
        -(-sum(r["prompt_tokens"] for r in b) // budget) +
        max(r["output_tokens"] for r in b) - 1 for b in batches.values())
    steps_c, steps_s = c["summary"]["steps"], s["summary"]["steps"]
    check(steps_s == expected,
          "static steps %d, expected %d" % (steps_s, expected))
    check(s["summary"]["tokens"]["padding"] ==
          sum(max(r["output_tokens"] for r in b) * len(b) -
              sum(r["output_tokens"] for r in b) for b in batches.values()),
          "static padding tokens")
    print("static: %d batches of at most %d, steps as predicted"
          % (len(batches), batch))
    print("steps: continuous %s static" % ("<" if steps_c < steps_s else ">="))


def same(first_path, second_path):
    a, b = load(first_path)["requests"], load(second_path)["requests"]
    check(len(a) == len(b), "different request counts")
    equal = sum(x.get("output") == y.get("output") for x, y in zip(a, b))
    print("outputs: %d of %d requests equal" % (equal, len(a)))


def svg(path):
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    check(root.tag == ns + "svg", "not an svg root")
    lines = root.findall(ns + "polyline")
    texts = [t.text for t in root.iter(ns + "text")]
    check(len(lines) == 3, "expected 3 lines, got %d" % len(lines))
    for line in lines:
        points = line.get("points").split()
        check(len(points) >= 2, "a line of fewer than two points")
        for p in points:
            x, y = (float(v) for v in p.split(","))
            check(0 <= x <= float(root.get("width")) and
                  0 <= y <= float(root.get("height")), "point off the plot")
    print("svg: %d lines; %s" % (len(lines), "; ".join(
        t for t in texts if t and ("over time" in t or "CDF" in t))))


def main(argv):
    if len(argv) >= 2 and argv[0] == "run":
        check_run(argv[1], "--context" in argv[2:])
    elif len(argv) == 3 and argv[0] == "compare":
        compare(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "same":
        same(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "svg":
        svg(argv[1])
    elif len(argv) >= 3 and argv[0] == "status":
        result = subprocess.run(argv[2:], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        sys.stdout.write(result.stderr)
        check(result.returncode == int(argv[1]),
              "exit status %d, expected %s" % (result.returncode, argv[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
