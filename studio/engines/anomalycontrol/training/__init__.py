"""Training the Semantic Guided Adapter: ``data`` (anomalies, captions, reference pairing, work-region crops),
``conditioning`` (reference features, condition dropout), ``checkpoints`` (resumable state) and ``train`` (the loop).
"""
