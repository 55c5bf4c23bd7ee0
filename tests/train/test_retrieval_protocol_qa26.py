"""Retrieval counts unique items, the COCO / Flickr30k protocol (QA26): with one row per caption each image
sat 5 times in the gallery, so one image's copies filled ranks 1-5 of a text query and text->image R@5 was
0.667 in a gallery of 3 unique images, where it is 1.0. Numbers below are computed by hand."""

from __future__ import annotations

import pytest
import torch

from mmdata.train.contrastive import retrieval, unique_rows


def coco_like() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """3 images (one-hot e0, e1, e2), each under 5 caption rows. Image 0's captions all point between e0
    and e1, nearer e1 (cos 0.66 to e0, 0.74 to e1); the other captions point at their image. Captions are
    all distinct (a tiny offset along e2 keeps them apart)."""
    e = torch.eye(3)
    img = torch.cat([e[i].repeat(5, 1) for i in range(3)])
    t = torch.stack([torch.tensor([0.8, 0.9, 0.0]) if i < 5 else e[i // 5] for i in range(15)])
    t = t / t.norm(dim=1, keepdim=True) + 1e-3 * torch.arange(15)[:, None] * torch.tensor([0, 0, 1.0])
    ids = torch.arange(15) // 5
    same = {"image": ids[:, None] == ids[None, :], "text": torch.eye(15, dtype=torch.bool)}
    pres = {"image": torch.ones(15, dtype=torch.bool), "text": torch.ones(15, dtype=torch.bool)}
    return {"image": img, "text": t}, pres, same


def test_text_to_image_ranks_unique_images() -> None:
    z, pres, same = coco_like()
    r = retrieval(z, pres, None, ["image", "text"], same)["image-text"]
    assert r["n"] == 15 and r["unique"] == {"image": 3, "text": 15}
    t2i = r["instance"]["text->image"]
    # captions 0-4 rank image 1 first and their image 0 second (of 3); captions 5-14 rank theirs first
    assert t2i["R@1"] == pytest.approx(10 / 15)
    assert t2i["R@5"] == pytest.approx(1.0)  # was 0.667: image 1's five copies filled ranks 1-5
    assert t2i["median_rank"] == pytest.approx(1.0)


def test_image_to_text_is_one_query_per_unique_image_hit_by_any_caption() -> None:
    z, pres, same = coco_like()
    i2t = retrieval(z, pres, None, ["image", "text"], same)["image-text"]["instance"]["image->text"]
    # image 0 (e0): captions 0-4 score 0.66 / ~0.66, captions 5-9 (e1) 0, captions 10-14 (e2 + offset) ~0;
    # its best caption ranks 1st. Image 1 (e1): captions 5-9 score 1.0, captions 0-4 0.74: rank 1.
    # Image 2 (e2): captions 10-14 score ~1.0: rank 1. Three queries (not 15 rows), all hits.
    assert i2t == {"R@1": 1.0, "R@5": 1.0, "median_rank": 1.0}
    # chance: image -> text, 15 captions of which 5 match: R@1 = 5/15; text -> image, 3 images, 1 matches
    ch = retrieval(z, pres, None, ["image", "text"], same)["image-text"]["chance"]
    assert ch["instance"]["R@1"] == pytest.approx(5 / 15)
    assert ch["instance_by_direction"]["text->image"]["R@1"] == pytest.approx(1 / 3)
    assert ch["instance_by_direction"]["text->image"]["R@5"] == pytest.approx(1.0)


def test_a_caption_repeated_under_two_images_is_one_query_hit_by_either() -> None:
    """Rows 0, 1: image A with caption "odd"; row 2: image B with the same caption "odd"; row 3: image B
    with caption "two". Text items: "odd" (rows 0-2), "two". Image items: A, B."""
    img = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    txt = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # "odd" nearer B, "two" nearer A
    same = {"image": torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.bool),
            "text": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)}
    pres = {m: torch.ones(4, dtype=torch.bool) for m in same}
    r = retrieval({"image": img, "text": txt}, pres, None, ["image", "text"], same)["image-text"]
    assert r["unique"] == {"image": 2, "text": 2}
    # text -> image: "odd" ranks B first, a match (B holds it in row 2): hit; "two" ranks A first, its image is B: miss
    assert r["instance"]["text->image"]["R@1"] == pytest.approx(0.5)
    assert r["instance"]["text->image"]["median_rank"] == pytest.approx(1.5)
    # image -> text: A ranks "two" first (a miss, A's caption is "odd"), "odd" second; B ranks "odd" first: hit
    assert r["instance"]["image->text"]["R@1"] == pytest.approx(0.5)


def test_without_identical_content_rows_are_items() -> None:
    z = {"image": torch.eye(4), "text": torch.eye(4)[[0, 1, 3, 2]]}
    pres = {m: torch.ones(4, dtype=torch.bool) for m in z}
    r = retrieval(z, pres, None, ["image", "text"])["image-text"]
    assert r["unique"] == {"image": 4, "text": 4}
    assert r["instance"]["image->text"]["R@1"] == pytest.approx(0.5)  # rows 2 and 3 swapped: tie-free misses
    item, reps = unique_rows(None, 3)
    assert item.tolist() == [0, 1, 2] and reps.tolist() == [0, 1, 2]
