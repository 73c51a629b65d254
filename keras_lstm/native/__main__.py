"""Builds keras_lstm's C++ ops ahead of time, or says why they do not run.

    python -m keras_lstm.native build          # compile now (e.g. in a Dockerfile)
    python -m keras_lstm.native build --force  # forget earlier builds and failures
    python -m keras_lstm.native info           # which loops run, flags, cache, errors

Both exit with 0 when the ops load and 1 when they do not.
"""

import argparse
import os
import sys

from keras_lstm.native import build


def describe():
    """Lines saying whether the ops run here, how they were built, and why not."""
    lines = []
    compiler = build.compiler()
    lines.append(f"compiler: {compiler or 'none found (set $CXX or install g++)'}")
    lines.append(f"cache directory: {build.cache_dir()}")
    if not build.enabled():
        lines.append(f"switched off: {build.DISABLE_VARIABLE}="
                     f"{os.environ.get(build.DISABLE_VARIABLE)}")
    if compiler is None:
        return lines
    path = build.library_path(compiler)
    lines.append(f"library: {path}")
    record = build.read_json(build.record_path(path))
    if record is not None and os.path.exists(path):
        lines.append(f"built with flag set '{record['flag_set']}': "
                     f"{' '.join(record['flags']) or '(no -march flags)'}")
        lines.append("SHA-256 check: " + ("ok" if build.intact(path)
                                          else "MISMATCH (will rebuild)"))
        for attempt in record.get("failed_attempts", []):
            lines.append(f"  flag set '{attempt['flag_set']}' failed first: "
                         + build.first_error_line(attempt["error"]))
    failure = build.read_json(build.failure_path(path))
    if failure is not None:
        lines.append(f"last build FAILED (recorded in {build.failure_path(path)}):")
        for attempt in failure.get("failed_attempts", []):
            lines.append(f"--- flag set '{attempt['flag_set']}':")
            lines.append(attempt["error"])
    if record is None and failure is None:
        lines.append("not built yet (`python -m keras_lstm.native build`)")
    return lines


def loops_line():
    """Which time loops the fused path runs for float32 layers here."""
    if build.available():
        return "float32 layers on CPU run the C++ loops (loops='native')"
    return ("float32 layers on CPU run the XLA loops (loops='xla'); the C++ ops "
            "are unavailable")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_lstm.native", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="compile the ops now")
    build_parser.add_argument(
        "--force", action="store_true",
        help="remove the cached library and any recorded failure first",
    )
    commands.add_parser("info", help="say which loops run and why")
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            path = build.ensure_built(force=args.force)
        except build.BuildError as error:
            print(f"keras_lstm: build failed: {error}", file=sys.stderr)
            return 1
        print(f"keras_lstm: C++ ops built: {path}")
    print("\n".join(describe()))
    print(loops_line())
    return 0 if build.available() else 1


if __name__ == "__main__":
    sys.exit(main())
