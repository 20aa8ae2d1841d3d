//===- moec.cpp - The moec compiler driver --------------------------------===//
//
//   moec MODEL.json [--emit=STAGE] [--report[=json]] [-o FILE]
//                   [--cluster=SPEC] [--tensor-parallel=N] [--pipeline-parallel=N]
//                   [--expert-parallel=N] [--objective=latency|throughput] ...
//
// Reads a model description, imports it to moe IR, runs the pipeline (with a
// cluster: the planner picks the degrees not given, then partitioning and
// memory/KV planning) and writes the requested stage. See README.md.
//
//===----------------------------------------------------------------------===//

#include "codegen/ArtifactWriter.h"
#include "codegen/CudaObject.h"
#include "codegen/ExecutionPlan.h"
#include "codegen/HostObject.h"
#include "dialects/moe/MoEDialect.h"
#include "dialects/moe/MoEOps.h"
#include "models/ClusterConfig.h"
#include "models/ModelConfig.h"
#include "passes/ModelReport.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"
#include "passes/PlanReport.h"
#include "passes/Planner.h"
#include "tools/moec/Importer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {
enum class ReportFormat { None, Text, JSON };
/// What moec writes: the IR after a pipeline stage, or the artifact.
enum class EmitKind { Moe, Partitioned, Decomposed, Kernels, Grid, Artifact };

cl::OptionCategory moecCategory("moec options");
cl::OptionCategory planCategory("partitioning and planning");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.json>"),
                               cl::Required, cl::cat(moecCategory));
cl::opt<std::string> outputFile("o", cl::desc("Output file (default: stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(moecCategory));
cl::opt<EmitKind> emit(
    "emit",
    cl::desc("Stage to stop after and write (default: moe, or partitioned "
             "with --cluster or a parallel degree)"),
    cl::values(clEnumValN(EmitKind::Moe, "moe",
                          "graph-level moe IR, verified and canonicalized"),
               clEnumValN(EmitKind::Partitioned, "partitioned",
                          "stage functions, sharded weights, collectives, "
                          "memory and KV-cache plans"),
               clEnumValN(EmitKind::Decomposed, "decomposed",
                          "attention and experts decomposed into their "
                          "steps (moe-decompose)"),
               clEnumValN(EmitKind::Kernels, "kernels",
                          "memory-bound ops fused into kernels shared by "
                          "identical layers (moe-fuse, moe-outline-kernels)"),
               clEnumValN(EmitKind::Grid, "grid",
                          "the kernels the plan calls, written for a grid of "
                          "thread blocks (--target=cuda: gpu.launch; host: "
                          "one thread per block), before lowering: replay "
                          "with moe-opt -moe-lower-cuda or -moe-lower-host"),
               clEnumValN(EmitKind::Artifact, "artifact",
                          "the artifact moe-run loads (format: "
                          "codegen/README.md)")),
    cl::init(EmitKind::Moe), cl::cat(moecCategory));
cl::opt<std::string> target(
    "target", cl::desc("Target of the artifact: host or cuda"),
    cl::init("host"), cl::cat(moecCategory));
cl::list<std::string> cudaChips(
    "cuda-chip", cl::CommaSeparated,
    cl::desc("cuda target: chips to generate PTX for, the first being the "
             "one ptxas checks (default: sm_90a; e.g. sm_90a,sm_80)"),
    cl::value_desc("chips"), cl::cat(moecCategory));
cl::opt<std::string> ptxasPath(
    "ptxas",
    cl::desc("cuda target: the ptxas that assembles each kernel (default: "
             "$CUDA_HOME/bin, /usr/local/cuda/bin or the PATH; 'none' to "
             "skip assembling)"),
    cl::value_desc("path"), cl::cat(moecCategory));
cl::opt<std::string> libdevicePath(
    "libdevice",
    cl::desc("cuda target: libdevice.10.bc, the math functions the kernels "
             "call (default: from $CUDA_HOME or /usr/local/cuda)"),
    cl::value_desc("path"), cl::cat(moecCategory));
cl::opt<int64_t> sharedMemoryLimit(
    "shared-memory-limit",
    cl::desc("Grid kernels: bytes of f32 row buffers a thread block keeps "
             "in shared memory; wider rows go to global scratch buffers "
             "(default: 49152, the static shared-memory limit)"),
    cl::init(49152), cl::value_desc("bytes"), cl::cat(moecCategory));
cl::opt<int64_t> expertGemmTokens(
    "expert-gemm-tokens",
    cl::desc("Steps of at least this many tokens (prefill) run the routed "
             "experts as one library GEMM per expert (cuBLAS / OpenBLAS, "
             "sizes read on the host); smaller steps use the graph-safe "
             "expert kernel (default: 16 routed rows per expert on average, "
             "ceil(16 x experts / top_k); 0: always the kernel)"),
    cl::init(-1), cl::value_desc("tokens"), cl::cat(moecCategory));
cl::opt<int64_t> ffnGemmTokens(
    "ffn-gemm-tokens",
    cl::desc("Steps of at least this many tokens (prefill) run dense FFNs "
             "(the draft models') as library GEMMs around an activation "
             "kernel; smaller steps use the FFN kernel (default: 16; 0: "
             "always the kernel)"),
    cl::init(-1), cl::value_desc("tokens"), cl::cat(moecCategory));
cl::opt<int64_t> flashAttentionTokens(
    "flash-attention-tokens",
    cl::desc("Steps in which some sequence has at least this many tokens (a "
             "prefill or a chunk of one) run attention as the tensor-core "
             "flash kernel, where it applies (bf16, head_dim a multiple of "
             "16, GPU plans; given explicitly, --grid-kernels host plans "
             "too, rounding to bf16 as the GPU does); other steps (decode "
             "batches of any size) use the split-K kernel (default: 16; 0: "
             "never)"),
    cl::init(-1), cl::value_desc("tokens"), cl::cat(moecCategory));
cl::opt<std::string> dtype(
    "dtype",
    cl::desc("Element type of weights and activations, overriding the "
             "model's: bf16, f16 or f32 (default: the model's; f32 for "
             "--target=host, whose kernels are the f32 reference)"),
    cl::value_desc("type"), cl::cat(moecCategory));
cl::opt<bool> gridKernels(
    "grid-kernels",
    cl::desc("Host target: compile the kernels the cuda target uses (grids "
             "of thread blocks) and run them with one thread per block, to "
             "check the GPU code's logic on the host"),
    cl::cat(moecCategory));
cl::opt<ReportFormat> report(
    "report", cl::ValueOptional,
    cl::desc("Print parameters by category, active parameters, FLOPs per "
             "token, KV-cache bytes per token and, for a partitioned model, "
             "a table per stage (IR is written only when --emit is also "
             "given)"),
    cl::values(clEnumValN(ReportFormat::Text, "", "tables (the default)"),
               clEnumValN(ReportFormat::Text, "text", "tables"),
               clEnumValN(ReportFormat::JSON, "json", "JSON, for tools")),
    cl::init(ReportFormat::None), cl::cat(moecCategory));
cl::opt<int64_t> batch(
    "batch",
    cl::desc("Sequences per decode step, for the report and the planner "
             "(throughput: the largest batch to try)"),
    cl::init(1), cl::cat(moecCategory));
cl::opt<int64_t> context(
    "context",
    cl::desc("Cached positions each token attends to (default: the model's "
             "max_context)"),
    cl::init(-1), cl::cat(moecCategory));

cl::opt<std::string> clusterSpec(
    "cluster",
    cl::desc("Plan for this cluster: PRESET:NODESxGPUS (presets a100-40gb, "
             "a100-80gb, h100-80gb, h200) or a cluster description file"),
    cl::value_desc("spec"), cl::cat(planCategory));
cl::opt<int64_t> tensorParallel(
    "tensor-parallel", cl::desc("Ranks per pipeline stage (default: planned)"),
    cl::init(0), cl::cat(planCategory));
cl::opt<int64_t> pipelineParallel("pipeline-parallel",
                                  cl::desc("Pipeline stages (default: planned)"),
                                  cl::init(0), cl::cat(planCategory));
cl::opt<int64_t> expertParallel(
    "expert-parallel",
    cl::desc("Groups the experts of a layer are spread over inside a stage; "
             "each expert is cut tensor-parallel/expert-parallel ways "
             "(default: planned)"),
    cl::init(0), cl::cat(planCategory));
cl::opt<bool> expertAllToAll(
    "expert-all-to-all",
    cl::desc("Experts exchange tokens by all-to-all instead of summing the "
             "ranks' shares with an all-reduce (needs expert-parallel = "
             "tensor-parallel; default: planned, else off)"),
    cl::cat(planCategory));
cl::opt<int64_t> headLayers(
    "head-layers", cl::desc("Layers on the first stage (default: even split)"),
    cl::init(-1), cl::cat(planCategory));
cl::opt<moe::Objective> objective(
    "objective", cl::desc("What the planner optimises"),
    cl::values(clEnumValN(moe::Objective::Latency, "latency",
                          "shortest decode step at --batch"),
               clEnumValN(moe::Objective::Throughput, "throughput",
                          "most tokens/s with a step under "
                          "--latency-bound-ms")),
    cl::init(moe::Objective::Latency), cl::cat(planCategory));
cl::opt<double> latencyBoundMs("latency-bound-ms",
                               cl::desc("Longest decode step (throughput)"),
                               cl::init(100.0), cl::cat(planCategory));
cl::opt<int64_t> maxTokens("max-tokens",
                           cl::desc("Most tokens in one step (activations)"),
                           cl::init(8192), cl::cat(planCategory));
cl::opt<int64_t> blockSize("kv-block-size",
                           cl::desc("Tokens per KV-cache block"), cl::init(16),
                           cl::cat(planCategory));
} // namespace

/// Prints the pipeline's errors the way compilers do: `FILE: error: MSG`.
static int failWith(llvm::ArrayRef<std::string> errors) {
  for (const std::string &error : errors)
    llvm::errs() << inputFile << ": error: " << error << "\n";
  return 1;
}

static bool partitionRequested() {
  return !clusterSpec.empty() || tensorParallel > 0 || pipelineParallel > 0 ||
         expertParallel > 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  cl::HideUnrelatedOptions({&moecCategory, &planCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "moec: compiles Mixture-of-Experts model descriptions\n\n"
      "  moec MODEL.json --report                      parameters, FLOPs, KV\n"
      "  moec MODEL.json --emit=moe -o F               the moe IR\n"
      "  moec MODEL.json --cluster=a100-40gb:16x8 --report\n"
      "                                  plan partitioning and memory\n\n"
      "MLIR's options (--mlir-timing, --mlir-print-ir-after-all, ...) are\n"
      "accepted too; --help-hidden lists them.\n");

  std::vector<std::string> errors;
  std::optional<moec::ModelConfig> config =
      moec::loadModelConfig(inputFile, errors);
  if (!config)
    return failWith(errors);
  if (batch < 1)
    return failWith(
        {"--batch must be at least 1, got " + std::to_string(batch)});
  std::optional<moec::ClusterConfig> cluster;
  if (!clusterSpec.empty()) {
    cluster = moec::resolveCluster(clusterSpec, errors);
    if (!cluster)
      return failWith(errors);
  }
  if (target != "host" && target != "cuda")
    return failWith({"--target must be host or cuda, got '" + target + "'"});
  for (cl::opt<int64_t> *tokens :
       {&expertGemmTokens, &ffnGemmTokens, &flashAttentionTokens})
    if (*tokens < -1)
      return failWith({"--" + tokens->ArgStr.str() +
                       " must be 0 (never) or a token count, got " +
                       std::to_string(*tokens)});
  if (!dtype.empty()) {
    if (dtype == "bf16")
      config->dtype = moec::DType::BF16;
    else if (dtype == "f16")
      config->dtype = moec::DType::F16;
    else if (dtype == "f32")
      config->dtype = moec::DType::F32;
    else
      return failWith({"--dtype must be bf16, f16 or f32, got '" + dtype + "'"});
  } else if (target == "host" && emit == EmitKind::Artifact) {
    config->dtype = moec::DType::F32;
  }
  bool partition = partitionRequested();
  moe::Stage stopAfter = emit == EmitKind::Moe          ? moe::Stage::Moe
                         : emit == EmitKind::Partitioned ? moe::Stage::Partitioned
                         : emit == EmitKind::Decomposed  ? moe::Stage::Decomposed
                                                         : moe::Stage::Kernels;
  if (partition && emit.getNumOccurrences() == 0)
    stopAfter = moe::Stage::Partitioned;
  if (partition && stopAfter == moe::Stage::Moe)
    return failWith({"--emit=moe stops before partitioning; use "
                     "--emit=partitioned (or leave --emit out) with "
                     "--cluster or a parallel degree"});

  DialectRegistry registry;
  registry.insert<moe::MoEDialect, func::FuncDialect>();
  moe::registerHostCodegenDialects(registry);
  moe::registerCudaCodegenDialects(registry);
  MLIRContext mlirContext(registry);
  mlirContext.printOpOnDiagnostic(false);
  // Diagnostics name the model file, as the reader's errors do; IR
  // locations inside it (layer names) follow in parentheses.
  ScopedDiagnosticHandler diagnostics(&mlirContext, [](Diagnostic &diag) {
    auto print = [](Diagnostic &d) {
      llvm::StringRef severity =
          d.getSeverity() == DiagnosticSeverity::Error     ? "error"
          : d.getSeverity() == DiagnosticSeverity::Warning ? "warning"
          : d.getSeverity() == DiagnosticSeverity::Note    ? "note"
                                                           : "remark";
      llvm::errs() << inputFile << ": " << severity << ": " << d;
      if (auto name = dyn_cast<NameLoc>(d.getLocation()))
        llvm::errs() << " (at " << name.getName().getValue() << ")";
      llvm::errs() << "\n";
    };
    print(diag);
    for (Diagnostic &note : diag.getNotes())
      print(note);
    return success();
  });
  OwningOpRef<ModuleOp> module =
      moe::importModel(*config, &mlirContext, inputFile);

  DefaultTimingManager timing;
  applyDefaultTimingManagerCLOptions(timing);
  TimingScope timingScope = timing.getRootScope();
  auto run = [&](llvm::function_ref<void(OpPassManager &)> build) {
    PassManager pm(&mlirContext);
    pm.enableTiming(timingScope);
    if (failed(applyPassManagerCLOptions(pm)))
      return failure();
    build(pm);
    return pm.run(*module);
  };
  if (failed(run([](OpPassManager &pm) {
        moe::buildMoEPipeline(pm, moe::Stage::Moe);
      })))
    return failWith({"the moe pipeline failed (see the diagnostics above)"});

  llvm::json::Object jsonReport;
  std::string text;
  llvm::raw_string_ostream textReport(text);
  moe::CostContext step{batch, context};
  if (report != ReportFormat::None) {
    FailureOr<moe::ModelSummary> summary = moe::summarizeModel(*module, step);
    if (failed(summary))
      return 1;
    moe::printModelReport(*summary, textReport);
    jsonReport["model"] = moe::toJSON(*summary);
  }

  if (stopAfter != moe::Stage::Moe) {
    moe::PartitionOptions options;
    options.cluster = clusterSpec;
    options.headLayers = headLayers;
    options.maxTokens = maxTokens;
    options.blockSize = blockSize;
    bool everyDegreeGiven =
        tensorParallel > 0 && pipelineParallel > 0 && expertParallel > 0;
    if (cluster && !everyDegreeGiven) {
      moe::PlannerRequest request;
      request.objective = objective;
      request.batch = batch;
      request.latencyBound = latencyBoundMs / 1e3;
      request.context = context;
      if (tensorParallel > 0)
        request.tensorParallel = tensorParallel;
      if (pipelineParallel > 0)
        request.pipelineStages = pipelineParallel;
      if (expertParallel > 0)
        request.expertParallel = expertParallel;
      if (expertAllToAll.getNumOccurrences())
        request.expertAllToAll = expertAllToAll;
      request.headLayers = headLayers;
      request.maxTokens = maxTokens;
      request.blockSize = blockSize;
      llvm::errs() << "moec: planning " << config->name << " for "
                   << cluster->name << " (" << cluster->getNumGPUs()
                   << " GPUs)...\n";
      FailureOr<moe::PlannerResult> plan =
          moe::choosePlan(*module, *cluster, clusterSpec, request);
      if (failed(plan))
        return 1;
      const moe::PlanCandidate &chosen = plan->candidates[plan->chosen];
      options = chosen.options;
      moe::printPlannerExplanation(*plan, textReport);
    } else {
      options.tensorParallel = std::max<int64_t>(1, tensorParallel);
      options.pipelineStages = std::max<int64_t>(1, pipelineParallel);
      options.expertParallel =
          expertParallel > 0 ? expertParallel : options.tensorParallel;
      options.expertAllToAll = expertAllToAll;
    }
    if (failed(run([&](OpPassManager &pm) {
          moe::addPartitionPasses(pm, options);
        })))
      return failWith({"partitioning failed (see the diagnostics above)"});
    if (report != ReportFormat::None) {
      moe::PlanReport plan = moe::summarizePlan(
          *module, cluster ? &*cluster : nullptr, step);
      moe::printPlanReport(plan, textReport);
      jsonReport["plan"] = moe::toJSON(plan);
    }
    if (stopAfter >= moe::Stage::Decomposed &&
        failed(run([&](OpPassManager &pm) {
          pm.addPass(moe::createMoEDecompose());
          pm.addPass(createCanonicalizerPass());
          if (stopAfter >= moe::Stage::Kernels) {
            pm.addPass(moe::createMoEFuse());
            pm.addPass(moe::createMoEOutlineKernels());
          }
        })))
      return failWith({"the moe pipeline failed (see the diagnostics above)"});
  }

  if (report == ReportFormat::JSON)
    llvm::outs() << llvm::formatv("{0:2}",
                                  llvm::json::Value(std::move(jsonReport)))
                 << "\n";
  else if (report == ReportFormat::Text)
    llvm::outs() << text;
  if (report != ReportFormat::None && emit.getNumOccurrences() == 0)
    return 0;

  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> output =
      openOutputFile(outputFile, &error);
  if (!output)
    return failWith({error});
  moe::PlanOptions planOptions;
  planOptions.blockSize = blockSize;
  planOptions.sharedMemoryLimit = sharedMemoryLimit;
  planOptions.expertGemmTokens = expertGemmTokens;
  planOptions.ffnGemmTokens = ffnGemmTokens;
  planOptions.flashAttentionTokens = flashAttentionTokens;
  if (emit == EmitKind::Grid) {
    FailureOr<moe::PlannedStages> planned = moe::planStages(
        *module,
        target == "cuda" ? moe::KernelForm::Gpu : moe::KernelForm::HostGrid,
        planOptions);
    if (failed(planned))
      return failWith({"planning the kernels failed (see the diagnostics "
                       "above)"});
    planned->code->print(output->os());
    output->os() << "\n";
    output->keep();
    return 0;
  }
  if (emit == EmitKind::Artifact) {
    std::optional<moe::HostCompilation> host;
    if (target == "host") {
      llvm::errs() << "moec: compiling the host kernels of " << config->name
                   << "...\n";
      FailureOr<moe::HostCompilation> compiled =
          moe::compileForHost(*module, gridKernels, planOptions);
      if (failed(compiled))
        return failWith({"host code generation failed (see the diagnostics "
                         "above)"});
      host = std::move(*compiled);
    }
    std::optional<moe::CudaCompilation> cuda;
    if (target == "cuda") {
      moe::CudaOptions options;
      if (!cudaChips.empty())
        options.chips.assign(cudaChips.begin(), cudaChips.end());
      options.libdevice = libdevicePath.getNumOccurrences()
                              ? libdevicePath.getValue()
                              : moe::findLibdevice();
      options.ptxas = ptxasPath.getNumOccurrences() ? ptxasPath.getValue()
                                                    : moe::findPtxas();
      if (options.ptxas == "none")
        options.ptxas.clear();
      options.failureDir = ".";
      options.plan = planOptions;
      if (options.libdevice.empty()) {
        llvm::errs() << "moec: warning: no libdevice.10.bc (the CUDA "
                        "toolkit's math library) in $CUDA_HOME or "
                        "/usr/local/cuda, and no --libdevice: this cuda "
                        "artifact has a plan but no kernels\n";
      } else {
        llvm::errs() << "moec: generating the GPU kernels of " << config->name
                     << " (" << llvm::join(options.chips, ", ")
                     << (options.ptxas.empty() ? ", not assembled"
                                               : ", assembled by ptxas")
                     << ")...\n";
        FailureOr<moe::CudaCompilation> compiled =
            moe::compileForCuda(*module, options);
        if (failed(compiled))
          return failWith({"cuda code generation failed (see the "
                           "diagnostics above)"});
        for (const moe::CudaKernel &kernel : compiled->kernels)
          if (kernel.report && (kernel.report->spillStores ||
                                kernel.report->spillLoads))
            llvm::errs() << "moec: warning: kernel " << kernel.function
                         << " spills (" << kernel.report->spillStores
                         << " bytes stored, " << kernel.report->spillLoads
                         << " loaded) on " << options.chips.front() << "\n";
        cuda = std::move(*compiled);
      }
    }
    FailureOr<std::string> artifact = moe::writeArtifact(
        *module, *config, target, host ? &*host : nullptr,
        cuda ? &*cuda : nullptr);
    if (failed(artifact))
      return 1;
    output->os() << *artifact;
  } else {
    module->print(output->os());
    output->os() << "\n";
  }
  output->keep();
  return 0;
}
