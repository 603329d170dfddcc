"""The ``anomalycontrol`` engine: AnomalyControl (He et al., arXiv 2412.06510) on diffusers + transformers.

One concept per module, named after the paper:

- ``csm``      Cross-modal Semantic Modeling (frozen BLIP-2 Q-Former with text input)
- ``asea``     Anomaly-Semantic Enhanced Attention (guidance variable ``e_g`` optimised by Adam)
- ``sga``      Semantic Guided Adapter (decoupled cross-attention in every UNet cross-attention layer)
- ``ip_adapter`` IP-Adapter's SD-1.5 weights in the SGA adapter (training's start; the ip-adapter guidance mode)
- ``inpainting`` the work region around the mask and the 9-channel UNet's inputs (engine and training)
- ``pipeline`` the engine: SD-1.5 inpainting in a guidance mode (sga, ip-adapter, text), chunks, compositing
- ``labels``   the candidate's label: the sketch, or the sketched pixels that changed
- ``scoring``  the candidate's score: BLIP-2 image-text matching of its region with the prompt
- ``weights``  weight profiles, the folder layout, file checks and guidance modes (no torch)
- ``models``   loading every profile (``load_bundle``), building, finishing and saving the models
- ``tiny``     miniature random models and generated tokenizers
- ``training`` SGA training (data, conditioning, checkpoints, the loop)

Importing this package (or ``weights``) does not import torch: the registry checks for
weights at start-up with :func:`weights.sd15_available`.
"""
