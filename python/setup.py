# SPDX-License-Identifier: MIT
"""Build the pshm package and its C extensions without CMake:
`pip install --no-build-isolation .` from the top of the tree (its setup.py
calls pshm_setup here), or `pip install --no-build-isolation ./python`
(offline, Debian's setuptools).

The extension list is read from python/CMakeLists.txt (the
pshm_python_extension(NAME ... SOURCES ...) calls), so CMake and pip always
build the same modules. Each links the whole of libpshm in (its sources are
compiled into the extension, hidden), so the installed module is
self-contained.
"""
import glob
import os
import re

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# setuptools wants paths relative to the directory of the setup.py it runs:
# this one's, or the top of the tree's (pshm_setup sets it).
BASE = HERE


def rel(path):
    return os.path.relpath(path, BASE)


def version():
    with open(os.path.join(ROOT, "include", "pshm.h")) as f:
        return re.search(r'#define PSHM_VERSION_STRING "([0-9.]+)"', f.read()).group(1)


def extensions():
    with open(os.path.join(HERE, "CMakeLists.txt")) as f:
        text = f.read()
    # the same sources as the top CMakeLists.txt's PSHM_SOURCES
    lib = sorted(p for d in ("", "sync", "os") for p in glob.glob(os.path.join(ROOT, "src", d, "*.c")))
    exts = []
    for m in re.finditer(r"^\s*pshm_python_extension\((.*?)\)\s*$", text, re.M | re.S):
        words = m.group(1).split()
        name = words[words.index("NAME") + 1]
        sources, libs, cur = [], [], None
        for w in words:
            if w in ("NAME", "SOURCES", "LIBRARIES"):
                cur = w
            elif cur == "SOURCES":
                sources.append(w)
            elif cur == "LIBRARIES":
                libs.append(w)
        exts.append(Extension(
            "pshm." + name,
            sources=[rel(os.path.join(HERE, p)) for p in sources + ["src/common.c"]] + [rel(p) for p in lib],
            include_dirs=[rel(os.path.join(HERE, "src")), rel(os.path.join(ROOT, "include")),
                          rel(os.path.join(ROOT, "src"))],
            define_macros=[("_GNU_SOURCE", None)],
            extra_compile_args=["-std=gnu11", "-fvisibility=hidden"],
            libraries=["rt", "pthread"] + libs,
        ))
    return exts + mpi_extension(lib)


def mpi_extension(lib):
    """pshm._mpi (issue 13), where mpicc and mpi4py's C headers exist: like
    the others, self-contained (libpshm and libpshm_mpi compiled in,
    hidden), linked to the MPI that mpicc names. [] where either is missing,
    as python/CMakeLists.txt does."""
    import shlex
    import shutil
    import subprocess

    def ask(*args):
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        except OSError:
            return None
        return shlex.split(out.stdout) if out.returncode == 0 else None

    try:
        import mpi4py
        inc4py = mpi4py.get_include()
    except ImportError:
        return []
    mpicc = os.environ.get("MPICC") or shutil.which("mpicc")
    if not mpicc or not os.path.exists(os.path.join(inc4py, "mpi4py", "mpi4py.h")):
        return []
    cflags, lflags = ask(mpicc, "--showme:compile"), ask(mpicc, "--showme:link")  # Open MPI
    if cflags is None or lflags is None:  # MPICH: the compiler's name, then its flags
        cflags, lflags = ask(mpicc, "-compile_info"), ask(mpicc, "-link_info")
        if not cflags or not lflags:
            return []
        cflags, lflags = cflags[1:], lflags[1:]
    mpi = sorted(glob.glob(os.path.join(ROOT, "src", "mpi", "*.c")))
    return [Extension(
        "pshm._mpi",
        sources=[rel(os.path.join(HERE, "src", p)) for p in ("mpi.c", "common.c")] + [rel(p) for p in mpi + lib],
        include_dirs=[rel(os.path.join(HERE, "src")), rel(os.path.join(ROOT, "include")),
                      rel(os.path.join(ROOT, "src")), inc4py],
        define_macros=[("_GNU_SOURCE", None)],
        extra_compile_args=["-std=gnu11", "-fvisibility=hidden"] + cflags,
        extra_link_args=lflags,
        libraries=["rt", "pthread"],
    )]


def parallel_compile(self, sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                     extra_preargs=None, extra_postargs=None, depends=None):
    """distutils compiles an extension's sources one by one; libpshm's are
    many: compile them on every core (the same steps, in a thread pool)."""
    from concurrent.futures import ThreadPoolExecutor

    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def one(obj):
        src, ext = build[obj]
        self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, objects))
    return objects


try:
    from distutils.ccompiler import CCompiler
except ImportError:  # setuptools' vendored copy only
    from setuptools._distutils.ccompiler import CCompiler
CCompiler.compile = parallel_compile


def pshm_setup(base):
    """setup() for the package, with paths relative to base (the directory
    of the setup.py being run)."""
    global BASE
    BASE = base
    setup(
        name="pshm",
        version=version(),
        description="Shared memory between processes: a drop-in for multiprocessing.shared_memory over libpshm",
        license="MIT",
        packages=["pshm"],
        package_dir={"pshm": rel(os.path.join(HERE, "pshm"))},
        package_data={"pshm": ["py.typed", "*.pyi"]},
        ext_modules=extensions(),
        python_requires=">=3.9",
        zip_safe=False,
    )


if __name__ == "__main__":
    pshm_setup(HERE)
