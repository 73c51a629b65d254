"""The compiler flag sets tried, in order, to build the C++ ops on this CPU.

``-march=native`` alone is not safe: on CPUs with AVX512-FP16 (Intel Sapphire
Rapids and later, most current cloud instances) it makes g++ compile
TensorFlow's bundled Eigen's half-precision AVX-512 code, which does not
compile (``PacketMathFP16.h: expected initializer before '<'``). So the build
tries, in order, until one compiles:

1. ``native``: the host's CPU, without the features known to break TF's Eigen;
2. ``portable``: a baseline every CPU of the family from the last decade runs
   (x86-64-v3 where this CPU has its features, armv8-a on ARM);
3. ``baseline``: no -march at all (the compiler's default target).

Each set is a pure function of the machine description, so the chain is
tested on any machine.
"""

import platform

# -mno-... flags added to -march=native: CPU features whose code paths in
# TensorFlow's bundled Eigen do not compile with g++. Keys are spelled as the
# compiler spells them; /proc/cpuinfo may add underscores ("avx512_fp16"), so
# features are compared through `_canonical`.
EIGEN_BREAKING_FEATURES = {
    "avx512fp16": "-mno-avx512fp16",
}

# /proc/cpuinfo flags that x86-64-v3 code uses; -march=x86-64-v3 builds code
# that dies with SIGILL on a CPU without them, so the set is skipped there.
X86_64_V3_FEATURES = ("avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "movbe")


def cpu_features(cpuinfo_text):
    """The set of feature flags in /proc/cpuinfo's text (x86 "flags", ARM "Features")."""
    features = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            features.update(value.split())
    return features


def read_cpuinfo():
    """/proc/cpuinfo's text, or "" where there is none (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return cpuinfo.read()
    except OSError:
        return ""


def _canonical(feature):
    """A feature name without case or underscores: Linux's /proc/cpuinfo says
    "avx512_fp16" where g++ says "avx512fp16"."""
    return feature.lower().replace("_", "")


def flag_sets(machine=None, features=None):
    """[(name, [flags])] to try in order on this machine.

    Args:
        machine: `platform.machine()` ("x86_64", "aarch64", "arm64", ...).
        features: The CPU's feature flags (`cpu_features`); None reads them.
    """
    machine = (machine or platform.machine()).lower()
    if features is None:
        features = cpu_features(read_cpuinfo())
    present = {_canonical(feature) for feature in features}
    native = ["-march=native"] + [
        flag for feature, flag in EIGEN_BREAKING_FEATURES.items()
        if _canonical(feature) in present
    ]
    sets = [("native", native)]
    if machine in ("x86_64", "amd64"):
        if all(_canonical(feature) in present for feature in X86_64_V3_FEATURES):
            sets.append(("portable", ["-march=x86-64-v3"]))
    elif machine in ("aarch64", "arm64"):
        sets.append(("portable", ["-march=armv8-a"]))
    sets.append(("baseline", []))
    return sets
