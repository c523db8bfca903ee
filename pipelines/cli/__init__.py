"""The `lipseq` command: one thin module per verb, each flags plus a call into the library.

lipseq <verb> [--flags]      verbs: see VERBS; `lipseq <verb> --help` lists a verb's flags
"""

from __future__ import annotations

import importlib
import sys

VERBS = {
    "prepare": "raw corpus -> prepared records + manifest.json, as the config says",
    "train": "train (or resume) a model from a config into a workdir",
    "export": "a training workdir -> a SavedModel (raw input in, text out)",
    "evaluate": "score an export (or a workdir's checkpoint): BLEU/chrF or WER/CER",
    "transcribe": "lip-read a raw face video with a lip-reading export",
    "enrol": "adapt a lip-reading export to a new speaker from a few of their clips",
    "translate": "translate text with a translation export",
    "serve": "HTTP service and web page for lip-reading and translation exports",
    "demo": "every path end to end on data the project generates",
}


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: lipseq <command> [--flags]   (lipseq <command> --help for its flags)", ""]
    lines += [f"  {verb:11s} {text}" for verb, text in VERBS.items()]
    lines += ["", "An experiment is one config file: lipseq prepare|train --config=<file or name>."]
    return "\n".join(lines)


def apply_runtime_settings(arguments: list[str]) -> None:
    """The process-wide settings, which must precede TensorFlow's import (the caller's
    imports must not load it): quiet libraries unless the arguments ask for --verbose."""
    # Late: `lipseq --help` answers before any of this loads.
    from pipelines.runtime import (
        keep_large_buffers_off_the_heap,
        quiet_libraries,
        show_library_output,
        use_onednn_kernels,
        verbose_requested,
    )

    keep_large_buffers_off_the_heap()
    use_onednn_kernels()
    if verbose_requested(arguments):
        show_library_output()
    else:
        quiet_libraries()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lipseq` console script (and `python -m pipelines`)."""
    # pip refuses older Pythons (requires-python); this covers running from a checkout.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"lipseq needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[1] == "--version":
        # Late: `lipseq --help` and `--version` answer before any library loads.
        from data_prep.paths import project_version

        print(f"lipseq {project_version()}")
        return
    verb = argv[1]
    if verb not in VERBS:
        sys.stderr.write(f"lipseq: unknown command {verb!r}\n{usage()}\n")
        sys.exit(2)
    apply_runtime_settings(argv[2:])
    # Late: after the runtime settings, which must come before TensorFlow's import.
    from pipelines.cli.common import define_global_flags, run

    module = importlib.import_module(f"pipelines.cli.{verb}")
    module.define_flags()
    define_global_flags()
    if any(a in ("-h", "--help", "--helpshort") for a in argv[2:]):
        print(verb_help(module))
        return
    run(module.main, [f"lipseq {verb}", *argv[2:]])


def verb_help(module) -> str:
    """A verb's description, its own flags, then the flags every verb takes."""
    # Late: absl loads only once the runtime settings are made.
    from absl import flags

    own = flags.FLAGS.module_help(module.__name__)
    shared = flags.FLAGS.module_help("pipelines.cli.common")
    return f"{(module.__doc__ or '').strip()}\n\n{own}\n{shared}"
