"""The ``anomalycontrol`` engine: AnomalyControl (He et al., arXiv 2412.06510) on diffusers + transformers.

One concept per module, named after the paper:

- ``csm``      Cross-modal Semantic Modeling (frozen BLIP-2 Q-Former with text input)
- ``asea``     Anomaly-Semantic Enhanced Attention (guidance variable ``e_g`` optimised by Adam)
- ``sga``      Semantic Guided Adapter (decoupled cross-attention in every UNet cross-attention layer)
- ``pipeline`` the engine: SD-1.5 inpainting + SGA, crop/paste, compositing, caching
- ``weights``  weight profiles (tiny, sd15-random, sd15, a folder) and the one loader
- ``tiny``     miniature random models and generated tokenizers

Importing this package (or ``weights``) does not import torch: the registry checks for
weights at start-up with :func:`weights.sd15_available`.
"""
