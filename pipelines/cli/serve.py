"""lipseq serve --model=D [--translation_model=D] [--host --port]: the HTTP service and page.

    lipseq serve --model=grid_s1            # then open http://127.0.0.1:8000/
    lipseq serve --model=grid_s1 --model=runs/s2/export --translation_model=multi30k_en_de

Each export (a path or a shipped name) is served under its name: a release's name, else its
folder's (the workdir's for a folder called export). Requests pick one with `model`; the first
of each kind answers those that do not.

POST /v1/transcribe (multipart `video`; `mode`, `grammar`, `images`), POST /v1/translate
(JSON {"text": ...}), GET /v1/models, /healthz, /metrics (Prometheus), and the web page at /.
It binds to 127.0.0.1 unless --host says otherwise.
"""

from absl import app, flags

from pipelines.cli.common import no_arguments

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = {"flag_values": flag_values}
    # A repeated flag, not a comma-separated list: an export path may hold a comma, and
    # `--model=a,b` then fails loudly (no such export), where a list flag given twice would
    # silently serve only the last. One --model reads as it always has.
    flags.DEFINE_multi_string(
        "model",
        None,
        "Lip-reading export directory, or a shipped model name; repeat to serve several "
        "(the first is the default).",
        **define,
    )
    flags.DEFINE_multi_string(
        "translation_model",
        None,
        "Translation export directory, or a shipped model name; repeat to serve several.",
        **define,
    )
    flags.DEFINE_string("host", "127.0.0.1", "Address to bind.", **define)
    flags.DEFINE_integer("port", 8000, "Port to bind.", **define)
    flags.DEFINE_float("max_upload_mb", 64.0, "Largest accepted upload (MiB).", **define)
    flags.DEFINE_float(
        "max_seconds",
        300.0,
        "Longest accepted video (seconds); one over 20 s is read in windows.",
        **define,
    )
    flags.DEFINE_integer(
        "queue_size", 8, "Requests served or waiting at once; more get 503.", **define
    )


def named_exports(flag_values: flags.FlagValues = FLAGS) -> tuple[dict, dict]:
    """(lip-reading, translation) exports by the name requests give them, in flag order;
    UsageError when there are none or two share a name (one namespace, as /v1/models lists
    both kinds)."""
    lipreading = flag_values.model or []
    translation = flag_values.translation_model or []
    if not (lipreading or translation):
        raise app.UsageError("give --model, --translation_model, or both")
    # Late: naming resolves shipped names through the exports module, which loads TensorFlow.
    from pipelines.serving.service import named_exports as name_all

    try:
        named = name_all([*lipreading, *translation])
    except ValueError as clash:
        raise app.UsageError(str(clash)) from None
    items = list(named.items())
    return dict(items[: len(lipreading)]), dict(items[len(lipreading) :])


def main(argv: list[str]) -> None:
    no_arguments(argv)
    lipreading, translation = named_exports()
    # Late: the server loads only once the flags are valid.
    import uvicorn

    from pipelines.serving.service import ServiceLimits, create_app

    limits = ServiceLimits(
        max_upload_bytes=int(FLAGS.max_upload_mb * 2**20),
        max_seconds=FLAGS.max_seconds,
        queue_size=FLAGS.queue_size,
    )
    service = create_app(list(lipreading.values()), list(translation.values()), limits)
    served = ", ".join([*lipreading, *translation])
    print(f"lipseq serve: http://{FLAGS.host}:{FLAGS.port}/  {served}  ({limits})", flush=True)
    # The line above says where it listens; uvicorn's start-up and access lines repeat that
    # and log each request, which --verbose brings back.
    quiet = not FLAGS.verbose
    uvicorn.run(
        service,
        host=FLAGS.host,
        port=FLAGS.port,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
    )
