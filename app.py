"""AnomalyControl Studio: start the Gradio app (also the Hugging Face Space entry point).

    python app.py [--data-dir DIR] [--engine auto|classic|anomalycontrol] [--weights PROFILE]
                  [--host HOST] [--port PORT]

Defaults come from GRADIO_SERVER_NAME, GRADIO_SERVER_PORT and ANOMALY_STUDIO_DATA. The engine
is loaded once here and shared by every session.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

START = time.perf_counter()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="AnomalyControl Studio (Gradio app)")
    parser.add_argument("--data-dir", default=os.environ.get("ANOMALY_STUDIO_DATA", "studio_data"),
                        help="curated-store folder (default: $ANOMALY_STUDIO_DATA or ./studio_data)")
    parser.add_argument("--engine", default=os.environ.get("ANOMALY_STUDIO_ENGINE", "auto"),
                        help="auto (default), classic or anomalycontrol")
    parser.add_argument("--weights", default=os.environ.get("ANOMALY_STUDIO_WEIGHTS_PROFILE") or None,
                        help="anomalycontrol weight profile: tiny, sd15-random, sd15 or a folder")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    from PIL import Image

    from studio import config
    from studio.tempdirs import private_root

    # One private temp root for session files, exports and Gradio's uploads, removed on exit,
    # SIGTERM and SIGINT (and by the next start if this process is killed); set before Gradio loads.
    temp_root = private_root("anomaly_studio_")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(temp_root / "gradio"))

    from studio.ui import zerogpu

    zerogpu.on_zero_gpu()  # imports `spaces` where installed, before torch touches CUDA (as ZeroGPU requires)

    from studio.ui import CSS, build_context, build_demo, disconnects, head_html, space

    disconnects.install()  # a client that goes away mid-request is an INFO line, not an ERROR with a traceback

    # Gradio decodes the page's editor images itself: hold Pillow to the studio's pixel limit too
    # (it raises above twice this), not its default of ~179 MP.
    Image.MAX_IMAGE_PIXELS = config.MAX_PIXELS

    deferred = space.defer_engine(args.engine)  # on a Space: serve now, fetch and switch in the background
    ctx = build_context(args.data_dir, "classic" if deferred else args.engine, args.weights,
                        temp_root=temp_root)
    demo = build_demo(ctx)
    if deferred:
        space.start(ctx, args.weights)
    demo.queue(max_size=64, default_concurrency_limit=8)
    logging.getLogger("studio").info("studio built in %.1f s; data folder %s", time.perf_counter() - START,
                                     ctx.data_dir.resolve())
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=config.MAX_FILE_BYTES,
        allowed_paths=[str(config.ASSETS_DIR)],
        blocked_paths=[str(ctx.data_dir.resolve())],
        show_error=False,
        ssr_mode=False,
        css=CSS,
        head=head_html(),
    )


if __name__ == "__main__":
    main()
