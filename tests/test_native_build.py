"""Building the C++ ops on any CPU: the flag chain, remembered failures, the
SHA-256 check before loading, the `python -m keras_lstm.native` command, and
CI's switch that turns skips into failures.

Most tests use a fake compiler (a shell script) that writes a dummy library
or fails on chosen flags, so they run in milliseconds; one builds the real
library with a wrapper around g++ that rejects -march=native, as on a CPU
where that flag breaks TensorFlow's Eigen, and loads it in a fresh process.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from keras_lstm.native import build
from keras_lstm.native import flags
import native_ops

CHAIN = [("native", ["-march=native"]), ("portable", ["-march=x86-64-v3"]),
         ("baseline", [])]


def fake_compiler(directory, rejects=(), real=None):
    """A compiler script that fails on any flag in `rejects`.

    Otherwise it runs `real` with its arguments, or writes a dummy library to
    the -o path. Every call appends its arguments to ``calls.log``.
    """
    log = os.path.join(directory, "calls.log")
    script = os.path.join(directory, "fake-cxx")
    checks = "\n".join(
        f'  [ "$a" = "{flag}" ] && {{ echo "error: unrecognized {flag}" >&2; exit 1; }}'
        for flag in rejects
    )
    action = f'exec {real} "$@"' if real else textwrap.dedent("""\
        while [ $# -gt 0 ]; do
          if [ "$1" = "-o" ]; then echo "library $*" > "$2"; fi
          shift
        done""")
    with open(script, "w") as file:
        file.write(f'#!/bin/sh\necho "$@" >> {log}\nfor a in "$@"; do\n'
                   f"{checks}\n  :\ndone\n{action}\n")
    os.chmod(script, os.stat(script).st_mode | stat.S_IEXEC)
    return script, log


def calls(log):
    if not os.path.exists(log):
        return []
    with open(log) as file:
        return file.read().splitlines()


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty cache directory; the fake compiler goes in tmp_path/bin."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(build.CACHE_VARIABLE, str(directory))
    monkeypatch.delenv(build.DISABLE_VARIABLE, raising=False)
    (tmp_path / "bin").mkdir()
    return directory


def use_compiler(monkeypatch, script):
    monkeypatch.setenv("CXX", script)
    monkeypatch.setattr(flags, "flag_sets", lambda *args, **kwargs: CHAIN)


@pytest.mark.parametrize(
    "rejects, used",
    [((), "native"), (("-march=native",), "portable"),
     (("-march=native", "-march=x86-64-v3"), "baseline")],
)
def test_flag_chain_falls_back_and_records_the_set_used(
        monkeypatch, cache, tmp_path, capsys, rejects, used):
    script, log = fake_compiler(str(tmp_path / "bin"), rejects)
    use_compiler(monkeypatch, script)
    path = build.ensure_built()
    said = capsys.readouterr().err
    if rejects:  # A fallback is said, with the compiler's error, not silent.
        assert f"built with flag set '{used}'" in said
        assert "error: unrecognized -march=native" in said
    else:
        assert "after" not in said
    record = build.read_json(build.record_path(path))
    assert record["flag_set"] == used
    assert record["sha256"] == build.file_sha256(path)
    assert [a["flag_set"] for a in record["failed_attempts"]] == [
        name for name, _ in CHAIN][: len(rejects)]
    assert len(calls(log)) == len(rejects) + 1


def test_failed_build_is_remembered_and_not_retried(monkeypatch, cache, tmp_path):
    script, log = fake_compiler(str(tmp_path / "bin"), rejects=("-O3",))
    use_compiler(monkeypatch, script)
    with pytest.warns(UserWarning, match="failed with every flag set"):
        assert build.ops.__wrapped__() is None
    assert len(calls(log)) == 3
    failure = build.failure_path(build.library_path(script))
    assert [a["flag_set"] for a in build.read_json(failure)["failed_attempts"]] \
        == ["native", "portable", "baseline"]
    # A later process reads the record and does not compile again.
    with pytest.warns(UserWarning, match="recorded in .*failed.json"):
        assert build.ops.__wrapped__() is None
    assert len(calls(log)) == 3
    assert [name for name in os.listdir(cache) if name.endswith(".so")] == []


def test_force_retries_a_remembered_failure(monkeypatch, cache, tmp_path):
    script, log = fake_compiler(str(tmp_path / "bin"), rejects=("-O3",))
    use_compiler(monkeypatch, script)
    with pytest.raises(build.BuildError):
        build.ensure_built()
    script, log = fake_compiler(str(tmp_path / "bin"))  # The compiler is fixed.
    path = build.ensure_built(force=True)
    assert build.intact(path)
    assert not os.path.exists(build.failure_path(path))


def test_damaged_library_is_rebuilt_not_loaded(monkeypatch, cache, tmp_path):
    script, log = fake_compiler(str(tmp_path / "bin"))
    use_compiler(monkeypatch, script)
    path = build.ensure_built()
    with open(path, "ab") as library:
        library.write(b"tampered")
    loaded = []
    monkeypatch.setattr(tf, "load_op_library", loaded.append)
    with pytest.raises(build.BuildError, match="does not match its recorded SHA-256"):
        build.load(path)
    assert loaded == []
    with pytest.warns(UserWarning, match="do not match the SHA-256"):
        assert build.ensure_built() == path
    assert build.intact(path) and len(calls(log)) == 2
    build.load(path)
    assert loaded == [path]


def test_library_without_record_is_rebuilt(monkeypatch, cache, tmp_path):
    script, log = fake_compiler(str(tmp_path / "bin"))
    use_compiler(monkeypatch, script)
    path = build.ensure_built()
    os.remove(build.record_path(path))
    with pytest.warns(UserWarning, match="rebuilding"):
        build.ensure_built()
    assert build.intact(path) and len(calls(log)) == 2


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv(build.DISABLE_VARIABLE, "0")
    assert not build.enabled()
    assert build.ops.__wrapped__() is None


def test_missing_compiler_warns(monkeypatch, cache, tmp_path):
    monkeypatch.setenv("CXX", "")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
        assert build.ops.__wrapped__() is None


def test_cxx_is_honoured(monkeypatch, cache, tmp_path):
    script, log = fake_compiler(str(tmp_path / "bin"))
    use_compiler(monkeypatch, script)
    assert build.compiler() == script
    build.ensure_built()
    assert calls(log) and calls(log)[0].startswith("-O3 -march=native")


def test_build_command_uses_tensorflow_flags():
    command = build.compile_command("g++", "/tmp/out.so", ["-march=x86-64-v3"])
    assert build.SOURCE in command and "-march=x86-64-v3" in command
    for flag in tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags():
        assert flag in command


@pytest.mark.parametrize(
    "machine, features, expected",
    [
        ("x86_64", {"avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "movbe",
                    "avx512f", "avx512fp16", "amx_tile"},
         [("native", ["-march=native", "-mno-avx512fp16"]),
          ("portable", ["-march=x86-64-v3"]), ("baseline", [])]),
        ("x86_64", {"avx512f", "avx2", "fma"},  # no bmi: v3 would not run
         [("native", ["-march=native"]), ("baseline", [])]),
        ("x86_64", set(), [("native", ["-march=native"]), ("baseline", [])]),
        ("aarch64", {"fp", "asimd"},
         [("native", ["-march=native"]), ("portable", ["-march=armv8-a"]),
          ("baseline", [])]),
        ("arm64", set(), [("native", ["-march=native"]),
                          ("portable", ["-march=armv8-a"]), ("baseline", [])]),
        ("ppc64le", set(), [("native", ["-march=native"]), ("baseline", [])]),
    ],
    ids=["sapphire-rapids", "no-v3", "x86-unknown", "aarch64", "mac", "ppc"],
)
def test_flag_sets_per_cpu(machine, features, expected):
    assert flags.flag_sets(machine, features) == expected


# The flags line of /proc/cpuinfo on a 2-core cloud VM reporting
# "Intel(R) Xeon(R) Processor" (Sapphire Rapids), as Linux spells them: note
# "avx512_fp16" with an underscore, where g++'s flag is -mno-avx512fp16.
SAPPHIRE_RAPIDS_CPUINFO = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t:"
    " fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov"
    " pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb"
    " rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid"
    " tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2"
    " x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand"
    " hypervisor lahf_lm abm 3dnowprefetch cpuid_fault fsgsbase"
    " tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f"
    " avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd"
    " sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni"
    " avx512_bf16 arat avx512vbmi umip avx512_vbmi2 gfni vaes"
    " vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid"
    " cldemote movdiri movdir64b fsrm serialize tsxldtrk amx_bf16"
    " avx512_fp16 amx_tile amx_int8 arch_capabilities\n"
)


def test_sapphire_rapids_cpuinfo_turns_off_avx512fp16():
    """Linux spells the feature avx512_fp16; a check for g++'s spelling alone
    missed it, so -march=native failed there and the build fell back to
    x86-64-v3 (no AVX-512)."""
    features = flags.cpu_features(SAPPHIRE_RAPIDS_CPUINFO)
    assert flags.flag_sets("x86_64", features) == [
        ("native", ["-march=native", "-mno-avx512fp16"]),
        ("portable", ["-march=x86-64-v3"]), ("baseline", [])]


def test_a_changed_flag_chain_changes_the_cache_key(monkeypatch):
    """A library an older chain built (e.g. x86-64-v3 after a missed feature)
    is not reused once the chain this machine tries changes."""
    monkeypatch.setattr(flags, "flag_sets", lambda *args, **kwargs: CHAIN)
    before = build.library_path("g++")
    monkeypatch.setattr(flags, "flag_sets",
                        lambda *args, **kwargs: [("native", ["-march=native",
                                                             "-mno-avx512fp16"])])
    assert build.library_path("g++") != before


def test_cpu_features_read_x86_and_arm_cpuinfo():
    text = ("processor\t: 0\nflags\t\t: fpu avx2 avx512fp16\n"
            "Features\t: fp asimd\n")
    assert flags.cpu_features(text) == {"fpu", "avx2", "avx512fp16", "fp", "asimd"}


def test_required_turns_a_skip_into_a_failure(monkeypatch):
    monkeypatch.setattr(build, "ops", lambda: None)
    monkeypatch.setenv(build.REQUIRE_VARIABLE, "0")
    with pytest.raises(pytest.skip.Exception):
        native_ops.native_ops_or_skip()
    monkeypatch.setenv(build.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match="KERAS_LSTM_REQUIRE_NATIVE=1"):
        native_ops.native_ops_or_skip()


def run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "keras_lstm.native", *args], env=env,
        capture_output=True, text=True, timeout=300,
    )


def test_info_reports_a_failed_build_with_the_compiler_error(cache, tmp_path):
    script, log = fake_compiler(str(tmp_path / "bin"), rejects=("-O3",))
    env = dict(os.environ, CXX=script, **{build.CACHE_VARIABLE: str(cache)})
    built = run_cli("build", env=env)
    assert built.returncode == 1
    assert "build failed" in built.stderr and "unrecognized -O3" in built.stderr
    info = run_cli("info", env=env)
    assert info.returncode == 1
    assert "last build FAILED" in info.stdout
    assert "unrecognized -O3" in info.stdout
    assert "run the XLA loops" in info.stdout
    assert len(calls(log)) == 3  # Once per flag set, by `build` only.


def test_real_build_falls_back_when_native_flags_break(cache, tmp_path):
    """g++ that rejects -march=native still gives working ops (fresh process)."""
    real = build.compiler()
    if real is None or "fake" in real:
        pytest.skip("no C++ compiler")
    script, log = fake_compiler(str(tmp_path / "bin"), ("-march=native",), real)
    env = dict(os.environ, CXX=script, **{build.CACHE_VARIABLE: str(cache)})
    env.pop(build.DISABLE_VARIABLE, None)
    built = run_cli("build", env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "built with flag set 'portable'" in built.stdout or \
        "built with flag set 'baseline'" in built.stdout
    check = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""\
            import numpy as np, tensorflow as tf
            from keras_lstm import fused
            from keras_lstm.native import build
            assert build.available()
            args = [tf.random.stateless_normal(s, [1, i]) for i, s in enumerate(
                [(2, 7, 3), (2, 4), (2, 4), (3, 16), (4, 16), (16,)])]
            a = fused.fused_lstm(*args, loops="native")[1]
            b = fused.fused_lstm(*args, loops="python")[1]
            np.testing.assert_allclose(a, b, atol=1e-5)
            print("ok")
        """)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert check.stdout.strip().endswith("ok"), check.stderr[-3000:]
    record = json.loads((cache / (os.path.basename(
        build.library_path(script)) + ".json")).read_text())
    assert record["failed_attempts"][0]["flag_set"] == "native"
