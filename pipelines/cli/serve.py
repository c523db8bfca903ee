"""lipseq serve --model=D [--translation_model=D] [--host --port]: the HTTP service and page.

    lipseq serve --model=grid_s1            # then open http://127.0.0.1:8000/

POST /v1/transcribe (multipart `video`; `mode`, `grammar`, `images`), POST /v1/translate
(JSON {"text": ...}), GET /v1/models, /healthz, /metrics (Prometheus), and the web page at /.
It binds to 127.0.0.1 unless --host says otherwise.
"""

from absl import app, flags

from pipelines.cli.common import no_arguments

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define = {"flag_values": flag_values}
    flags.DEFINE_string(
        "model", None, "Lip-reading export directory, or a shipped model name.", **define
    )
    flags.DEFINE_string("translation_model", None, "Translation export directory.", **define)
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


def main(argv: list[str]) -> None:
    no_arguments(argv)
    if not (FLAGS.model or FLAGS.translation_model):
        raise app.UsageError("give --model, --translation_model, or both")
    # Late: the server and the service's models load only once the flags are valid.
    import uvicorn

    from pipelines.serving.service import ServiceLimits, create_app

    limits = ServiceLimits(
        max_upload_bytes=int(FLAGS.max_upload_mb * 2**20),
        max_seconds=FLAGS.max_seconds,
        queue_size=FLAGS.queue_size,
    )
    service = create_app(FLAGS.model, FLAGS.translation_model, limits)
    print(f"lipseq serve: http://{FLAGS.host}:{FLAGS.port}/  ({limits})", flush=True)
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
