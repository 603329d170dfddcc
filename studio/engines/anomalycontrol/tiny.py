"""Miniature random models and generated tokenizers: every code path on a CPU in seconds.

The ``tiny`` profile builds the same classes as the real weights (9-channel
``UNet2DConditionModel``, ``AutoencoderKL``, ``CLIPTextModel``,
``Blip2ForImageTextRetrieval``) at toy sizes with a fixed seed, so its outputs are
deterministic noise. The tokenizers are generated here (no vocabulary files to
download); ``sd15-random`` reuses them with the full-size architectures.

The CLIP tokenizer is a byte-level BPE over the 256 byte symbols (with and without the
end-of-word marker) and no merges: every word is spelled out byte by byte, which is
enough to exercise the text path; ids stay far below the real 49 408-token embedding.
The BERT tokenizer is a WordPiece over letters, digits, punctuation and a few defect
words, plus BLIP-2's ``[DEC]`` token.
"""
from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import torch

#: The tiny models generate at 64x64 pixels (8x8 latents).
TINY_RESOLUTION = 64
TINY_SEED = 0

_DEFECT_WORDS = (
    "a an the of on in with and small large long thin deep dark bright rust scratch scratches crack cracks "
    "hole holes stain stains dent dents spot spots contamination missing broken cut bent fold glue color "
    "print thread fabric metal wood leather tile screw pill capsule cable bottle surface defect anomaly"
).split()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 bytes to printable unicode symbols."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def clip_tokenizer(model_max_length: int = 77):
    """A CLIP tokenizer over a generated 514-token byte vocabulary (ids 0 = BOS, 1 = EOS/PAD).

    Built from vocabulary files (``vocab.json`` + an empty ``merges.txt``), the one constructor every
    supported transformers version shares.
    """
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    symbols = list(bytes_to_unicode().values())
    for sym in symbols:
        vocab[sym] = len(vocab)
    for sym in symbols:
        vocab[sym + "</w>"] = len(vocab)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        Path(folder, "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=model_max_length)


def bert_tokenizer(model_max_length: int = 512):
    """A BERT WordPiece tokenizer over a generated vocabulary (``vocab.txt``), with BLIP-2's ``[DEC]`` BOS token."""
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens += pieces + ["##" + p for p in pieces] + list(_DEFECT_WORDS)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "vocab.txt").write_text("".join(t + "\n" for t in dict.fromkeys(tokens)), encoding="utf-8")
        tokenizer = BertTokenizer.from_pretrained(folder, model_max_length=model_max_length)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return tokenizer


def tiny_configs(clip_vocab: int, bert_vocab: int) -> dict[str, dict]:
    """Keyword arguments of every tiny model (kept in one place so tests can read them)."""
    return {
        "unet": dict(
            sample_size=TINY_RESOLUTION // 8, in_channels=9, out_channels=4, layers_per_block=1,
            block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
            attention_head_dim=8, norm_num_groups=32,
        ),
        "vae": dict(
            block_out_channels=(16, 16, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8,
            layers_per_block=1, sample_size=TINY_RESOLUTION,
        ),
        "text_encoder": dict(
            vocab_size=clip_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        ),
        "blip2": dict(
            vision_config=dict(
                hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                image_size=64, patch_size=4, initializer_range=0.5,
            ),
            qformer_config=dict(
                vocab_size=bert_vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, cross_attention_frequency=1, use_qformer_text_input=True,
                max_position_embeddings=64, initializer_range=0.3,
            ),
            num_query_tokens=8, image_text_hidden_size=16,
        ),
        "scheduler": dict(
            num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            steps_offset=1, timestep_spacing="leading",
        ),
    }


def build_tiny_components(seed: int = TINY_SEED) -> dict:
    """Random-init miniature models (fp32, CPU, eval mode), deterministic for a given seed.

    Returns a dict with ``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``,
    ``blip2`` and ``blip_tokenizer`` (the SGA adapter is attached by the loader).
    """
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import Blip2Config, Blip2ForImageTextRetrieval, CLIPTextConfig, CLIPTextModel

    tokenizer = clip_tokenizer()
    blip_tokenizer = bert_tokenizer()
    cfg = tiny_configs(len(tokenizer), len(blip_tokenizer))
    fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
        blip2 = Blip2ForImageTextRetrieval(Blip2Config(**cfg["blip2"]))
        # BLIP-2 initialises its query tokens to zero (the real ones are learnt): give the
        # miniature distinct queries so its cross-attention maps have structure.
        with torch.no_grad():
            blip2.query_tokens.normal_(0.0, 1.0)
    scheduler = EulerDiscreteScheduler(**cfg["scheduler"])
    return {
        "unet": unet.eval(), "vae": vae.eval(), "text_encoder": text_encoder.eval(), "tokenizer": tokenizer,
        "scheduler": scheduler, "blip2": blip2.eval(), "blip_tokenizer": blip_tokenizer,
    }


def tiny_image_encoder(seed: int = TINY_SEED):
    """A miniature CLIP image encoder with IP-Adapter SD-1.5's projection width (1024), random weights."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from studio.engines.anomalycontrol.sga import EMBED_DIM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=32, patch_size=8, projection_dim=EMBED_DIM)
        return CLIPVisionModelWithProjection(config).eval()
