"""The request parameters of the ``anomalycontrol`` engine (no torch: the CLI and the batch spec read them).

The engine's ``parameters()`` returns these; nothing else lists them (the page's Advanced panel, the API,
the CLI flags, the batch keys and the metadata all come from here).
"""
from __future__ import annotations

from studio.types import EngineParameter

STEPS = EngineParameter("steps", "denoising steps", 50, 1, 200, 1, True,
                        "Scheduler steps (the model runs strength x steps).")
STRENGTH = EngineParameter("strength", "strength", 0.7, 0.05, 1.0, 0.05,
                           help="How far the region is noised before denoising.")
GUIDANCE = EngineParameter("guidance", "guidance scale", 7.0, 0.0, 30.0, 0.5,
                           help="Classifier-free guidance of the prompt.")
SGA_SCALE = EngineParameter("sga_scale", "SGA scale (λ)", 1.0, 0.0, 5.0, 0.1,
                            help="Weight of the reference's semantic tokens; 0 = plain inpainting.")
IP_ADAPTER_SCALE = EngineParameter("ip_adapter_scale", "IP-Adapter scale", 0.6, 0.0, 2.0, 0.05,
                                   help="Weight of the reference cut's IP-Adapter tokens (guidance mode ip-adapter); "
                                        "0 = plain inpainting.")
ASEA_STEPS = EngineParameter("asea_steps", "ASEA steps", 5, 0, 50, 1, True,
                             "Guidance optimisation steps on the reference's attention.", explains=True)
ASEA_LR = EngineParameter("asea_lr", "ASEA learning rate", 0.1, 1e-4, 10.0, 0.01,
                          help="Adam step size of the ASEA guidance variable.", explains=True)
BLUR_SIGMA = EngineParameter("blur_sigma", "composite blur σ (px)", 5.0, 0.0, 50.0, 0.5,
                             help="Feather of the mask the result is composited through.")
LABEL_THRESHOLD = EngineParameter(
    "label_threshold", "label: changed-pixel threshold", 0, 0, 255, 1, True,
    "0 = the label is the sketched mask (as in the paper); above 0 = the sketched pixels that changed by more "
    "than this many grey levels, cleaned.")

#: Every parameter the engine may use, in the order the page shows them.
PARAMETERS: tuple[EngineParameter, ...] = (STEPS, STRENGTH, GUIDANCE, SGA_SCALE, IP_ADAPTER_SCALE, ASEA_STEPS, ASEA_LR,
                                           BLUR_SIGMA, LABEL_THRESHOLD)
