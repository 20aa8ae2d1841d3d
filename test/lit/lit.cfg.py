# lit configuration of the moec tests: one file per op group, pass and tool.
import os
import shutil

import lit.formats
from lit.llvm import llvm_config

config.name = "moec"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moec_obj_root, "test", "lit")

import sys
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%models", os.path.join(config.moec_src_root, "models")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))

llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.use_default_substitutions()
tool_dirs = [config.moec_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(
    ["moe-opt", "moec", "moe-run", "mlir-opt", "mlir-runner"], tool_dirs)
# Runtime support of mlir-runner (printMemrefF32, ...) for execution tests.
config.substitutions.append(("%mlir_runner_utils", os.path.join(config.llvm_lib_dir, "libmlir_runner_utils.so")))
config.substitutions.append(("%mlir_c_runner_utils", os.path.join(config.llvm_lib_dir, "libmlir_c_runner_utils.so")))
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# ptxas assembles PTX for sm_90a where the CUDA toolkit is installed; tests
# that need it are reported UNSUPPORTED (skipped, and listed as such) where
# it is not.
if shutil.which("ptxas") or os.path.exists("/usr/local/cuda/bin/ptxas"):
    config.available_features.add("ptxas")
# libdevice provides the math functions (__nv_expf, __nv_rsqrtf, ...) that
# NVVM lowering calls.
for cuda in [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]:
    libdevice = os.path.join(cuda, "nvvm", "libdevice", "libdevice.10.bc")
    if cuda and os.path.exists(libdevice):
        config.available_features.add("libdevice")
        config.substitutions.append(("%libdevice", libdevice))
        break

# mpirun launches one moe-run process per rank (Open MPI here; running as
# root, as CI does, needs --allow-run-as-root). Tests that need it are
# UNSUPPORTED where it is missing.
if shutil.which("mpirun"):
    config.available_features.add("mpirun")
    config.substitutions.append(
        ("%mpirun", "mpirun --allow-run-as-root --oversubscribe"))
# Open MPI reads these; pass them through lit's clean environment.
for name in ["HOME", "TMPDIR", "OMPI_MCA_plm_rsh_agent"]:
    if name in os.environ:
        config.environment[name] = os.environ[name]
