from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import find_packages, setup

# The native bottom-up search (native/synth/*.h): the same space as syno_tvm/synth/*.py, 30-55x faster; the
# Python space stays the reference that tests replay every native final through.
native = Pybind11Extension("syno_tvm._synth_native", ["native/synth/module.cc"], cxx_std=17,
                           include_dirs=["native/synth"], extra_compile_args=["-O3"])

setup(
    name="syno-tvm",
    version="0.1.0",
    description="Synthesize neural-network operators from dimension primitives and compile them with Apache TVM",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["syno_tvm*"]),
    package_data={"syno_tvm": ["data/*"]},
    python_requires=">=3.10",
    ext_modules=[native],
    cmdclass={"build_ext": build_ext},
    install_requires=[
        "apache-tvm==0.27.0.post1",
        # 0.1.15.post2 segfaults in tvm::ffi::ToJSONGraph during every MetaSchedule run (measured with TVM 0.27).
        "apache-tvm-ffi==0.1.14.post0",
        "numpy",
        "onnx",
        # The peer baseline: reports and benchmarks time the original ONNX model with it.
        "onnxruntime",
        "xgboost",
        "tqdm",
        # syno-tvm report: the Pareto plot of a search.
        "matplotlib",
        # syno-tvm search --ray: candidates evaluated as Ray tasks (2.60 installs and imports on Python 3.11 here).
        "ray",
        # load_digits (shipped inside the wheel) is the fast real-data check of the training path.
        "scikit-learn",
        # Not pulled in by apache-tvm, but MetaSchedule's builder/runner and tvm.rpc import them.
        "cloudpickle",
        "psutil",
        "tornado",
    ],
    # nbclient + ipykernel: tests/test_tutorials.py executes the notebooks through a Jupyter kernel
    extras_require={"test": ["pytest", "hypothesis", "nbformat>=5.9", "nbclient>=0.10", "ipykernel>=6"]},
    entry_points={"console_scripts": ["syno-tvm = syno_tvm.cli:main"]},
)
