"""Seed an HF hub cache with tiny random-weight detection checkpoints, for offline tests.

- ``seed_tiny_yolos(cache_dir, repo_id)``: a YOLOS object detector (2 layers, 32 wide, 10
  detection tokens, classes box/crate/bottle/arm) with a PIL image processor (short side 48).
- ``seed_tiny_owlvit(cache_dir, repo_id)``: an OWL-ViT zero-shot detector (1 text and 1
  vision layer, 32 wide, 64 px input) with a CLIP BPE tokenizer built offline from a tiny
  byte-level vocabulary (every byte, plus whole-word merges for a few words) and the
  ``OwlViTImageProcessorPil`` (OWLv2's image processor needs scipy, which is not installed).

Both write ``<cache_dir>/models--<org>--<name>/{refs/main, snapshots/<commit>/...}`` so that
``from_pretrained(repo_id, cache_dir=cache_dir)`` works with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.hf_seed import hub_snapshot, seed_checkpoint, widen_weights

YOLOS_REPO_ID = "hustvl/yolos-small"
OWLVIT_REPO_ID = "google/owlvit-base-patch32"
TINY_CLASSES = ("box", "crate", "bottle", "arm")
_TOKENIZER_WORDS = ("the", "red", "green", "blue", "box", "crate", "bottle", "robot", "arm", "cup")


def build_tiny_yolos(seed: int = 0):
    """Return (model, image_processor) of a tiny random-weight YOLOS detector."""
    import torch
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessorPil

    config = YolosConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=[48, 64],
        patch_size=16,
        num_detection_tokens=10,
        id2label=dict(enumerate(TINY_CLASSES)),
        label2id={name: i for i, name in enumerate(TINY_CLASSES)},
    )
    torch.manual_seed(seed)
    model = YolosForObjectDetection(config).eval()
    widen_weights(model, seed, 0.1)
    processor = YolosImageProcessorPil(size={"shortest_edge": 48, "longest_edge": 64})
    return model, processor


def build_tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over every byte plus whole-word merges of a few words (max 16 tokens)."""
    from transformers import CLIPTokenizer

    # CLIP's byte -> printable-character table (as in GPT-2).
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable + [256 + n for n in range(256 - len(printable))]
    chars = [chr(code) for code in codes]
    vocab = {char: i for i, char in enumerate(chars)}
    vocab.update({char + "</w>": len(chars) + i for i, char in enumerate(chars)})
    merges: list[tuple[str, str]] = []
    for word in _TOKENIZER_WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in merges:
                merges.append(pair)
            vocab.setdefault(pair[0] + pair[1], len(vocab))
            pieces = [pair[0] + pair[1]] + pieces[2:]
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)


def build_tiny_owlvit(seed: int = 0):
    """Return (model, processor) of a tiny random-weight OWL-ViT zero-shot detector."""
    import torch
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessorPil, OwlViTProcessor

    tokenizer = build_tiny_clip_tokenizer()
    special = tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    config = OwlViTConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=special[0],
            eos_token_id=special[1],
            pad_token_id=special[1],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=64,
            patch_size=16,
        ),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = OwlViTForObjectDetection(config).eval()
    widen_weights(model, seed, 0.08)
    image_processor = OwlViTImageProcessorPil(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64})
    return model, OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer)


def seed_tiny_yolos(cache_dir: str | Path, repo_id: str = YOLOS_REPO_ID) -> Path:
    """Write the tiny YOLOS into the hub cache at ``cache_dir`` under ``repo_id``; return the snapshot folder."""
    return seed_checkpoint(cache_dir, repo_id, *build_tiny_yolos())


def seed_tiny_owlvit(cache_dir: str | Path, repo_id: str = OWLVIT_REPO_ID) -> Path:
    """Write the tiny OWL-ViT (model, tokenizer, processor) into the hub cache under ``repo_id``;
    return the snapshot folder."""
    return seed_checkpoint(cache_dir, repo_id, *build_tiny_owlvit())


GROUNDING_DINO_REPO_ID = "IDEA-Research/grounding-dino-tiny"
_BERT_WORDS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *_TOKENIZER_WORDS)


def build_tiny_grounding_dino(folder: str | Path, seed: int = 0):
    """Return (model, processor) of a tiny random-weight Grounding DINO (Swin backbone, 1-layer
    BERT over a word-level vocabulary written to ``folder``/vocab.txt)."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        GroundingDinoProcessor,
        SwinConfig,
    )

    vocab = Path(folder) / "vocab.txt"
    vocab.parent.mkdir(parents=True, exist_ok=True)
    vocab.write_text("\n".join(_BERT_WORDS) + "\n")
    tokenizer = BertTokenizer(str(vocab))
    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(
        vocab_size=len(_BERT_WORDS),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
        num_feature_levels=3,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
    )
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(config).eval()
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessorPil(size={"shortest_edge": 48, "longest_edge": 64}),
        tokenizer=tokenizer,
    )
    return model, processor


def seed_tiny_grounding_dino(cache_dir: str | Path, repo_id: str = GROUNDING_DINO_REPO_ID) -> Path:
    """Write the tiny Grounding DINO into the hub cache under ``repo_id``; return the snapshot folder."""
    snapshot = hub_snapshot(cache_dir, repo_id)
    model, processor = build_tiny_grounding_dino(snapshot)
    model.save_pretrained(snapshot)
    processor.save_pretrained(snapshot)
    return snapshot
