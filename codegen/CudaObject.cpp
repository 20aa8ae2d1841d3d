//===- CudaObject.cpp - The cuda target's back end ------------------------===//

#include "codegen/CudaObject.h"
#include "codegen/ExecutionPlan.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"
#include "mlir/Transforms/RegionUtils.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Regex.h"

#include <numeric>

using namespace mlir;
using namespace mlir::moe;

void mlir::moe::registerCudaCodegenDialects(DialectRegistry &registry) {
  registry.insert<gpu::GPUDialect, NVVM::NVVMDialect>();
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerGPUDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
}

static std::string cudaHome() {
  if (const char *home = std::getenv("CUDA_HOME"))
    return home;
  return "/usr/local/cuda";
}

std::string mlir::moe::findLibdevice() {
  llvm::SmallString<256> path(cudaHome());
  llvm::sys::path::append(path, "nvvm", "libdevice", "libdevice.10.bc");
  if (llvm::sys::fs::exists(path))
    return path.str().str();
  return "";
}

std::string mlir::moe::findPtxas() {
  llvm::SmallString<256> bin(cudaHome());
  llvm::sys::path::append(bin, "bin");
  if (auto path = llvm::sys::findProgramByName("ptxas", {bin}))
    return *path;
  if (auto path = llvm::sys::findProgramByName("ptxas"))
    return *path;
  return "";
}

std::optional<PtxasReport> mlir::moe::parsePtxasReport(StringRef output,
                                                       StringRef function) {
  // "Compiling entry function 'F' for ..." opens F's lines; the next
  // "Compiling" closes them.
  std::string opening = ("Compiling entry function '" + function + "'").str();
  size_t start = output.find(opening);
  if (start == StringRef::npos)
    return std::nullopt;
  StringRef rest = output.substr(start + opening.size());
  rest = rest.substr(0, rest.find("Compiling entry function"));
  PtxasReport report;
  auto number = [&](StringRef pattern, int64_t &value) {
    SmallVector<StringRef> groups;
    if (llvm::Regex(pattern).match(rest, &groups))
      groups[1].getAsInteger(10, value);
  };
  number("Used ([0-9]+) registers", report.registers);
  number("([0-9]+) bytes smem", report.sharedBytes);
  number("([0-9]+) bytes stack frame", report.stackBytes);
  number("([0-9]+) bytes spill stores", report.spillStores);
  number("([0-9]+) bytes spill loads", report.spillLoads);
  return report;
}

namespace {
/// A grid size of a launch: ceil(factor x dimension `dim` of kernel
/// argument `arg` / divisor), or a constant.
struct GridSize {
  std::optional<int64_t> constant;
  unsigned arg = 0, dim = 0;
  int64_t factor = 1, divisor = 1;
};

/// One gpu.launch_func of a kernel function, after outlining.
struct Launch {
  std::string module, function;
  GridSize grid[3];
  int64_t block[3];
  /// The kernel function's argument passed as each kernel parameter.
  SmallVector<unsigned> params;
};

/// The grid size `value` computes: a constant, an argument's size, or
/// that times a constant, or that divided by a constant, rounding up.
std::optional<GridSize> matchGridSize(Value value, func::FuncOp kernel) {
  llvm::APInt constant;
  if (matchPattern(value, m_ConstantInt(&constant)))
    return GridSize{constant.getSExtValue()};
  if (auto dim = value.getDefiningOp<memref::DimOp>()) {
    auto arg = dyn_cast<BlockArgument>(dim.getSource());
    std::optional<int64_t> index = dim.getConstantIndex();
    if (arg && arg.getOwner() == &kernel.getBody().front() && index)
      return GridSize{std::nullopt, arg.getArgNumber(),
                      static_cast<unsigned>(*index)};
    return std::nullopt;
  }
  Operation *op = value.getDefiningOp();
  if (!op || !isa<arith::MulIOp, arith::CeilDivUIOp>(op) ||
      !matchPattern(op->getOperand(1), m_ConstantInt(&constant)) ||
      constant.getSExtValue() <= 0)
    return std::nullopt;
  std::optional<GridSize> size = matchGridSize(op->getOperand(0), kernel);
  if (!size)
    return std::nullopt;
  int64_t c = constant.getSExtValue();
  if (size->constant) {
    *size->constant = isa<arith::MulIOp>(op) ? *size->constant * c
                                             : (*size->constant + c - 1) / c;
    return size;
  }
  // ceil(ceil(x / a) / b) = ceil(x / (a b)); a product after a division
  // is not a plan size.
  if (isa<arith::MulIOp>(op)) {
    if (size->divisor != 1)
      return std::nullopt;
    size->factor *= c;
  } else {
    size->divisor *= c;
  }
  return size; // planGridSize reduces the fraction
}

FailureOr<GridSize> traceGridSize(Value value, func::FuncOp kernel) {
  if (std::optional<GridSize> size = matchGridSize(value, kernel))
    return *size;
  return kernel.emitError("the grid of a launch in ")
         << kernel.getName()
         << " is not a constant or an argument's size (times a constant, "
            "or divided by one rounding up)";
}

/// The plan size of `size` given the argument's plan size `shape` ("T",
/// "2T", 4, ...): "GT/64" for ceil(G x T / 64).
FailureOr<llvm::json::Value> planGridSize(const GridSize &size,
                                          const llvm::json::Value &shape) {
  if (std::optional<int64_t> n = shape.getAsInteger())
    return llvm::json::Value((*n * size.factor + size.divisor - 1) /
                             size.divisor);
  std::optional<StringRef> text = shape.getAsString();
  if (!text || text->empty())
    return failure();
  int64_t factor = 1;
  StringRef digits = text->drop_back();
  if (!digits.empty() && digits.getAsInteger(10, factor))
    return failure();
  factor *= size.factor;
  int64_t common = std::gcd(factor, size.divisor);
  std::string out;
  if (factor / common != 1)
    out += std::to_string(factor / common);
  out += text->back();
  if (size.divisor / common != 1)
    out += "/" + std::to_string(size.divisor / common);
  return llvm::json::Value(out);
}

/// The launches of every kernel function of `code`, in order.
FailureOr<llvm::StringMap<SmallVector<Launch, 2>>>
collectLaunches(ModuleOp code) {
  llvm::StringMap<SmallVector<Launch, 2>> launches;
  for (auto kernel : code.getOps<func::FuncOp>()) {
    auto &list = launches[kernel.getName()];
    WalkResult walked = kernel.walk([&](gpu::LaunchFuncOp op) {
      Launch launch;
      launch.module = op.getKernelModuleName().str();
      launch.function = op.getKernelName().str();
      Value grid[3] = {op.getGridSizeX(), op.getGridSizeY(), op.getGridSizeZ()};
      Value block[3] = {op.getBlockSizeX(), op.getBlockSizeY(),
                        op.getBlockSizeZ()};
      for (int i = 0; i < 3; ++i) {
        FailureOr<GridSize> size = traceGridSize(grid[i], kernel);
        if (failed(size))
          return WalkResult::interrupt();
        launch.grid[i] = *size;
        llvm::APInt threads;
        if (!matchPattern(block[i], m_ConstantInt(&threads))) {
          kernel.emitError("the block size of a launch is not a constant");
          return WalkResult::interrupt();
        }
        launch.block[i] = threads.getSExtValue();
      }
      for (Value operand : op.getKernelOperands()) {
        auto arg = dyn_cast<BlockArgument>(operand);
        if (!arg || arg.getOwner() != &kernel.getBody().front()) {
          InFlightDiagnostic diag = op.emitError("a kernel parameter of ")
                                    << kernel.getName()
                                    << " is not one of its arguments: ";
          diag << operand;
          return WalkResult::interrupt();
        }
        launch.params.push_back(arg.getArgNumber());
      }
      list.push_back(std::move(launch));
      return WalkResult::advance();
    });
    if (walked.wasInterrupted())
      return failure();
    if (list.empty())
      return kernel.emitError("the GPU kernel ")
             << kernel.getName() << " has no launch";
  }
  return launches;
}

/// Adds the launches to the plan's kernel steps.
LogicalResult addLaunches(llvm::json::Object &execution,
                          const llvm::StringMap<SmallVector<Launch, 2>> &all,
                          ModuleOp module) {
  llvm::json::Array *buffers = execution.getArray("buffers");
  llvm::json::Array *steps = execution.getArray("steps");
  for (llvm::json::Value &value : *steps) {
    llvm::json::Object &step = *value.getAsObject();
    if (step.getString("kind") != "kernel")
      continue;
    StringRef name = *step.getString("kernel");
    auto it = all.find(name);
    if (it == all.end())
      return module.emitError("no GPU code for the kernel ") << name;
    llvm::json::Array &args = *step.getArray("args");
    llvm::json::Array launches;
    for (const Launch &launch : it->second) {
      llvm::json::Array grid, block, params;
      for (int i = 0; i < 3; ++i) {
        const GridSize &size = launch.grid[i];
        if (size.constant) {
          grid.push_back(*size.constant);
        } else {
          if (size.arg >= args.size())
            return module.emitError("a launch of ")
                   << name << " reads a missing argument";
          int64_t id = *args[size.arg].getAsInteger();
          const llvm::json::Object &buffer = *(*buffers)[id].getAsObject();
          FailureOr<llvm::json::Value> planned =
              planGridSize(size, (*buffer.getArray("shape"))[size.dim]);
          if (failed(planned))
            return module.emitError("a launch of ")
                   << name << " has a grid size that is not a plan size";
          grid.push_back(std::move(*planned));
        }
        block.push_back(launch.block[i]);
      }
      for (unsigned param : launch.params)
        params.push_back(static_cast<int64_t>(param));
      launches.push_back(llvm::json::Object{{"function", launch.function},
                                            {"module", launch.module},
                                            {"grid", std::move(grid)},
                                            {"block", std::move(block)},
                                            {"params", std::move(params)}});
    }
    step["launches"] = std::move(launches);
  }
  return success();
}

/// Assembles `ptx` for `chip`; on failure keeps the PTX in `failureDir` and
/// names the command that reproduces the error.
LogicalResult assemble(ModuleOp module, const CudaOptions &options,
                       StringRef chip, CudaKernel &kernel, std::string &cubin,
                       StringRef ptx) {
  llvm::SmallString<128> ptxPath, cubinPath, logPath;
  if (llvm::sys::fs::createTemporaryFile("moec-" + kernel.module, "ptx",
                                         ptxPath) ||
      llvm::sys::fs::createTemporaryFile("moec-" + kernel.module, "cubin",
                                         cubinPath) ||
      llvm::sys::fs::createTemporaryFile("moec-ptxas", "log", logPath))
    return module.emitError("cannot create a temporary file");
  bool keep = false;
  llvm::scope_exit cleanup([&] {
    if (!keep)
      llvm::sys::fs::remove(ptxPath);
    llvm::sys::fs::remove(cubinPath);
    llvm::sys::fs::remove(logPath);
  });
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(ptxPath, ec);
    if (ec)
      return module.emitError("cannot write ") << ptxPath;
    os << ptx;
  }
  std::string arch = ("-arch=" + chip).str();
  SmallVector<StringRef> args = {options.ptxas, arch, "-v",
                                 ptxPath,       "-o", cubinPath};
  std::optional<StringRef> redirects[] = {std::nullopt, logPath, logPath};
  std::string message;
  int status = llvm::sys::ExecuteAndWait(options.ptxas, args, std::nullopt,
                                         redirects, 0, 0, &message);
  auto log = llvm::MemoryBuffer::getFile(logPath);
  std::string output = log ? (*log)->getBuffer().str() : "";
  if (status != 0) {
    // Keep the PTX where the user can find it.
    std::string kept = ptxPath.str().str();
    if (!options.failureDir.empty()) {
      llvm::SmallString<256> target(options.failureDir);
      llvm::sys::path::append(target, kernel.module + "." + chip + ".ptx");
      if (!llvm::sys::fs::copy_file(ptxPath, target))
        kept = target.str().str();
      else
        keep = true;
    } else {
      keep = true;
    }
    return module.emitError("ptxas failed on kernel '")
           << kernel.function << "' for " << chip << ": "
           << StringRef(output).trim() << message
           << "\nreproduce with: " << options.ptxas << " " << arch << " -v "
           << kept << " -o /dev/null";
  }
  auto bytes = llvm::MemoryBuffer::getFile(cubinPath, /*IsText=*/false);
  if (!bytes)
    return module.emitError("cannot read ") << cubinPath;
  cubin = (*bytes)->getBuffer().str();
  if (chip == options.chips.front())
    kernel.report = parsePtxasReport(output, kernel.function);
  return success();
}
} // namespace

FailureOr<CudaCompilation>
mlir::moe::compileForCuda(ModuleOp module, const CudaOptions &options) {
  FailureOr<PlannedStages> planned =
      planStages(module, KernelForm::Gpu, options.plan);
  if (failed(planned))
    return failure();
  ModuleOp code = *planned->code;
  MLIRContext *context = module.getContext();

  // Constants the canonicalizer hoisted out of the launches go back in, so
  // that a kernel's parameters are the kernel function's arguments only.
  code.walk([](gpu::LaunchOp launch) {
    llvm::SetVector<Value> outside;
    getUsedValuesDefinedAbove(launch.getBody(), outside);
    OpBuilder b = OpBuilder::atBlockBegin(&launch.getBody().front());
    for (Value value : outside) {
      Operation *def = value.getDefiningOp();
      if (!def || !def->hasTrait<OpTrait::ConstantLike>())
        continue;
      Value copy = b.clone(*def)->getResult(0);
      value.replaceUsesWithIf(copy, [&](OpOperand &use) {
        return launch->isProperAncestor(use.getOwner());
      });
    }
  });
  PassManager outline(context);
  outline.addPass(createGpuKernelOutliningPass());
  if (failed(outline.run(code)))
    return module.emitError("outlining the GPU kernels failed");
  FailureOr<llvm::StringMap<SmallVector<Launch, 2>>> launches =
      collectLaunches(code);
  if (failed(launches))
    return failure();

  PassManager pm(context);
  CudaLoweringOptions lowering;
  lowering.chips = options.chips;
  lowering.libdevice = options.libdevice;
  addCudaLoweringPasses(pm, lowering);
  if (failed(pm.run(code)))
    return module.emitError("lowering the GPU kernels to PTX failed");

  CudaCompilation result;
  result.chips = options.chips;
  for (auto binaryOp : code.getOps<gpu::BinaryOp>()) {
    CudaKernel kernel;
    kernel.module = binaryOp.getName().str();
    for (const auto &[name, list] : *launches)
      for (const Launch &launch : list)
        if (launch.module == kernel.module)
          kernel.function = launch.function;
    if (kernel.function.empty())
      return module.emitError("no launch calls the GPU module ")
             << kernel.module;
    for (auto [chip, object] :
         llvm::zip(options.chips, binaryOp.getObjectsAttr()))
      kernel.ptx.push_back(
          {chip, cast<gpu::ObjectAttr>(object).getObject().str()});
    result.kernels.push_back(std::move(kernel));
  }
  // Assemble with ptxas where it is installed.
  if (!options.ptxas.empty())
    for (CudaKernel &kernel : result.kernels)
      for (const auto &[chip, ptx] : kernel.ptx) {
        std::string cubin;
        if (failed(assemble(module, options, chip, kernel, cubin, ptx)))
          return failure();
        kernel.cubin.push_back({chip, std::move(cubin)});
      }

  result.executions = std::move(planned->executions);
  for (llvm::json::Object &execution : result.executions)
    if (failed(addLaunches(execution, *launches, module)))
      return failure();
  return result;
}
