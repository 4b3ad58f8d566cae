# lit configuration for ampc's FileCheck tests (run by ctest through LLVM 19's lit).
import os
import lit.formats

config.name = "ampc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".test", ".txt.test", ".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.ampc_build_dir, "tests", "lit")
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py.in"]
for _k in ("XDG_CACHE_HOME", "HOME"):
    if _k in os.environ:
        config.environment[_k] = os.environ[_k]
config.environment["PATH"] = os.pathsep.join(
    [config.ampc_tools_dir, "/usr/lib/llvm-19/bin", config.environment.get("PATH", "")])
config.substitutions.append(("%fixtures", config.ampc_fixtures_dir))
config.substitutions.append(("%gen", config.ampc_gen_dir))
