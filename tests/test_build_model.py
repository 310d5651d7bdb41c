import json
import subprocess
import sys

import pytest

MEASURE = """
import json, os, resource
os.environ["HF_HUB_OFFLINE"] = "1"
import lavis_vila
from lavis_vila.models import build_model
model = build_model("vila", "flant5xl", empty=True)
count = lambda module: sum(p.numel() for p in module.parameters())
print(json.dumps({
    "vit": count(model.visual_encoder),
    "llm": count(model.t5_model),
    "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    "devices": sorted({str(p.device) for p in model.parameters()}),
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
}))
"""


@pytest.fixture(scope="module")
def flant5xl_empty():
    """Build in a fresh process so its peak RSS measures the build alone."""
    out = subprocess.run([sys.executable, "-c", MEASURE], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_empty_flant5xl_has_the_paper_backbone_sizes(flant5xl_empty):
    assert flant5xl_empty["vit"] == pytest.approx(0.986e9, rel=0.01)
    assert flant5xl_empty["llm"] == pytest.approx(2.85e9, rel=0.01)


def test_empty_flant5xl_trainable_parameters_match_the_papers_188m(flant5xl_empty):
    assert flant5xl_empty["trainable"] == pytest.approx(188e6, rel=0.10)


def test_empty_build_allocates_nothing(flant5xl_empty):
    assert flant5xl_empty["devices"] == ["meta"]
    assert flant5xl_empty["peak_rss_gb"] < 3.0


def test_each_frame_prompter_builds_at_full_size_on_the_meta_device_with_the_documented_parameters():
    from lavis_vila.models import build_model

    counts = {}
    for prompter in ("segment", "free_form", "question_aware"):
        model = build_model("vila", "flant5xl", empty=True, frame_prompter=prompter)
        assert {str(p.device) for p in model.frame_prompter.parameters()} == {"meta"}
        counts[prompter] = sum(p.numel() for p in model.frame_prompter.parameters())
    n, c, s, d, h = 257, 1408, 8, 768, 32  # tokens, ViT width, S = T/K (32/4), Q-Former width, question_aware's hidden
    assert counts["segment"] == (n * s * s + s) + 2 * s + (s * s + s)  # Linear(S*N, S), LayerNorm(S), Linear(S, S)
    assert counts["free_form"] == (n * s + s) + 2 * s + (s + 1)
    assert counts["question_aware"] == (c * h + h) + 2 * h + 2 * d + (d * 2 * h + 2 * h) + (h + 1)
    assert (counts["segment"], counts["question_aware"]) == (16_544, 95_937)  # docs/results/ablation.md's figures


def test_unknown_model_type_lists_the_available_ones():
    from lavis_vila.models import build_model

    with pytest.raises(KeyError, match=r"Unknown model_type 'flant5xs' for 'vila'. Available: \['flant5xl', 'flant5xxl', 'tiny'\]"):
        build_model("vila", "flant5xs", empty=True)
