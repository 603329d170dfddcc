"""``anomaly-studio fetch``: download the anomalycontrol engine's weights (SD-1.5 inpainting, BLIP-2 ITM, an SGA adapter)."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fetch",
        help="download the anomalycontrol engine's weights from the Hugging Face Hub",
        description="Download Stable Diffusion 1.5 inpainting and BLIP-2 ITM (safetensors only; finished files "
                    "are kept, so an interrupted fetch resumes) and optionally an SGA adapter, then check that the "
                    "engine finds them. Offline (HF_HUB_OFFLINE=1) nothing is fetched and the command exits 2.",
    )
    p.add_argument("--sga", dest="adapter", default=None, metavar="ADAPTER",
                   help="also fetch an SGA adapter: a hub id user/repo[/file.safetensors] (or a local file)")
    p.add_argument("--ip-adapter", action=argparse.BooleanOptionalAction, default=None,
                   help="also fetch IP-Adapter SD-1.5 and its CLIP image encoder (h94/IP-Adapter): guidance mode "
                        "ip-adapter (reference guidance without training) and the start for `train --init-ip-adapter`; "
                        "default: yes on a Space, no elsewhere")
    p.add_argument("--local-dir", default=None, metavar="DIR",
                   help="put the files in DIR laid out like weights/ (e.g. --local-dir weights); "
                        "default: the Hugging Face cache, where the sd15 profile finds them")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from studio.engines.anomalycontrol.hub import fetch_weights
    from studio.engines.anomalycontrol.weights import guidance_mode

    fetched = fetch_weights(args.local_dir, sga=args.adapter, ip_adapter=args.ip_adapter)
    print(f"fetched {fetched.sd} and {fetched.blip}", file=sys.stderr)
    use = f"anomaly-studio generate --engine anomalycontrol --weights {fetched.weights} ..."
    if fetched.adapter is not None:
        print(f"SGA adapter: {fetched.adapter}", file=sys.stderr)
        if fetched.root is None:
            use += f" --sga {args.adapter}"
    mode = guidance_mode(fetched.adapter is not None, fetched.ip_adapter is not None)
    print(f"the engine's file check passes (guidance mode {mode}); use them with: {use}", file=sys.stderr)
    if fetched.ip_adapter is not None:
        print(f"train from IP-Adapter with: anomaly-studio train --init-ip-adapter {fetched.ip_adapter} ...",
              file=sys.stderr)
    print(fetched.weights)
    return 0
