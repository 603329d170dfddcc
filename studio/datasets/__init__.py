"""On-disk dataset formats, one module each, reader and writer side by side (anomalib style).

``mvtec`` (read for evaluation and training, written by exports), ``coco`` and ``imagefolder``
(written by exports); ``sink`` is where a writer's files land (a staging folder or a zip).
"""
