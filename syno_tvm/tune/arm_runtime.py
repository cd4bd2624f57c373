"""The aarch64 TVM runtime (``libtvm_runtime.so`` and ``libtvm_ffi.so``), taken from PyPI's aarch64 wheels of the
apache-tvm and apache-tvm-ffi versions installed here, and the native runner cross-built against it.

Why the wheels: the x86-64 wheels hold x86-64 runtime libraries only, and the runtime cannot be rebuilt from them
(apache-tvm's ``src/runtime`` needs sources the wheel lacks).  PyPI's aarch64 wheels of the same versions hold aarch64
builds that need nothing beyond glibc and libstdc++.  Only the two libraries are kept (about 5 MB of a 98 MB download),
in a cache directory named after both versions, so a machine downloads them once; a directory that already holds the
wheels (a pip download cache, a copy brought to an offline machine) is used without the network.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from ..errors import SynoError

# wheel member -> file name in the runtime directory (both in one directory: libtvm_runtime's RUNPATH is $ORIGIN)
MEMBERS = {"apache_tvm": ("tvm/lib/libtvm_runtime.so", "libtvm_runtime.so"),
           "apache_tvm_ffi": ("tvm_ffi/lib/libtvm_ffi.so", "libtvm_ffi.so")}
# manylinux tags the aarch64 wheels are published under, newest first (pip takes a tag and every older one)
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
EM_AARCH64 = b"\xb7\x00"


@dataclass(frozen=True)
class Aarch64Runtime:
    """A directory holding aarch64 builds of libtvm_runtime.so and libtvm_ffi.so of known versions."""

    lib_dir: Path
    tvm_version: str
    ffi_version: str

    @property
    def runtime_lib(self) -> Path:
        return self.lib_dir / MEMBERS["apache_tvm"][1]

    @property
    def ffi_lib(self) -> Path:
        return self.lib_dir / MEMBERS["apache_tvm_ffi"][1]

    def to_json(self) -> dict:
        return {"lib_dir": str(self.lib_dir), "apache_tvm": self.tvm_version, "apache_tvm_ffi": self.ffi_version}


def cache_root() -> Path:
    """``$SYNO_TVM_CACHE``, else ``$XDG_CACHE_HOME/syno-tvm``, else ``~/.cache/syno-tvm``."""
    import os

    if os.environ.get("SYNO_TVM_CACHE"):
        return Path(os.environ["SYNO_TVM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "syno-tvm"


def installed_versions() -> tuple[str, str]:
    """The apache-tvm and apache-tvm-ffi versions of this interpreter: the aarch64 runtime must be the same build."""
    return version("apache-tvm"), version("apache-tvm-ffi")


def is_aarch64_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and head[18:20] == EM_AARCH64


def _wheel(directory: Path, dist: str, ver: str) -> Path | None:
    return next(iter(sorted(directory.glob(f"{dist}-{ver}-*aarch64*.whl"))), None)


def _extract(wheels: dict[str, Path], dest: Path) -> None:
    """Unpack the two libraries into ``dest`` through a temporary sibling, so a kill leaves no half directory."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    try:
        for dist, wheel in wheels.items():
            member, name = MEMBERS[dist]
            with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(tmp / name, "wb") as out:
                shutil.copyfileobj(src, out)
            if not is_aarch64_elf(tmp / name):
                raise SynoError(f"{wheel.name}: {member} is not an aarch64 ELF library")
        if dest.exists():  # another process finished first
            return
        tmp.rename(dest)
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise SynoError(f"cannot unpack the aarch64 runtime from {', '.join(w.name for w in wheels.values())}: "
                        f"{e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(dest: Path, tvm_ver: str, ffi_ver: str, progress: bool) -> None:
    """``pip download`` both aarch64 wheels into a temporary directory (no pip cache: 98 MB kept once is enough)."""
    py = f"{sys.version_info.major}{sys.version_info.minor}"
    last = ""
    with tempfile.TemporaryDirectory(prefix="syno-aarch64-wheels-") as tmp:
        for platform in PLATFORMS:
            cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps", "--no-cache-dir",
                   "--platform", platform, "--python-version", py, "-d", tmp,
                   f"apache-tvm=={tvm_ver}", f"apache-tvm-ffi=={ffi_ver}"]
            if progress:
                print(f"downloading the aarch64 apache-tvm {tvm_ver} / apache-tvm-ffi {ffi_ver} wheels ({platform}) "
                      f"for their runtime libraries", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, stdout=sys.stderr if progress else subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=900)
            wheels = {"apache_tvm": _wheel(Path(tmp), "apache_tvm", tvm_ver),
                      "apache_tvm_ffi": _wheel(Path(tmp), "apache_tvm_ffi", ffi_ver)}
            if proc.returncode == 0 and all(wheels.values()):
                _extract(wheels, dest)
                return
            last = (proc.stderr.strip().splitlines() or [f"pip exit status {proc.returncode}"])[-1]
    raise SynoError(f"cannot download the aarch64 apache-tvm=={tvm_ver} / apache-tvm-ffi=={ffi_ver} wheels from PyPI "
                    f"({last[:200]}): put them in a directory and pass it as wheel_dir")


def aarch64_runtime(wheel_dir: "str | Path | None" = None, cache_dir: "str | Path | None" = None,
                    download: bool = True, progress: bool = True) -> Aarch64Runtime:
    """The aarch64 runtime of the installed TVM versions: from the cache, else unpacked from the wheels in
    ``wheel_dir``, else (``download``) fetched from PyPI once.  Raises SynoError when none of these works."""
    tvm_ver, ffi_ver = installed_versions()
    dest = Path(cache_dir or cache_root()) / f"aarch64-runtime-tvm{tvm_ver}-ffi{ffi_ver}"
    runtime = Aarch64Runtime(dest, tvm_ver, ffi_ver)
    if is_aarch64_elf(runtime.runtime_lib) and is_aarch64_elf(runtime.ffi_lib):
        return runtime
    if wheel_dir is not None:
        wheels = {"apache_tvm": _wheel(Path(wheel_dir), "apache_tvm", tvm_ver),
                  "apache_tvm_ffi": _wheel(Path(wheel_dir), "apache_tvm_ffi", ffi_ver)}
        missing = [f"{d.replace('_', '-')}=={v}" for (d, w), v in zip(wheels.items(), (tvm_ver, ffi_ver)) if w is None]
        if missing and not download:
            raise SynoError(f"'{wheel_dir}' holds no aarch64 wheel of {' and '.join(missing)}")
        if not missing:
            _extract(wheels, dest)
            return runtime
    if not download:
        raise SynoError(f"no aarch64 TVM runtime in '{dest}' and downloading is off: pass the directory of the "
                        f"aarch64 apache-tvm=={tvm_ver} and apache-tvm-ffi=={ffi_ver} wheels")
    _download(dest, tvm_ver, ffi_ver, progress)
    return runtime


def build_runner(runtime: Aarch64Runtime, build_dir: "str | Path | None" = None) -> Path:
    """The native runner cross-built for aarch64 and linked against ``runtime``; returns the executable."""
    from .native import REPO, build_runner as build

    result = build(build_dir or REPO / "build" / "native-aarch64", cross_aarch64=True,
                   runtime_lib=runtime.runtime_lib, ffi_lib=runtime.ffi_lib)
    if result.executable is None:
        raise SynoError(f"the aarch64 runner did not link against {runtime.lib_dir} (see {result.build_dir})")
    return result.executable
