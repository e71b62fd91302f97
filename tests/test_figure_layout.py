"""Figures a person can read: no two texts overlap, no text leaves the canvas, no label leaves its box.

Every figure the report can contain is built from a small simulated study (the analysis plan of
``ncs_prepost_control`` run on ``simulate_study(n=300, seed=1)``, so the figures are exactly the report's), plus the
figures the plan does not draw for that design (priors, meta-analysis forest and funnel, indirect effects, path
diagrams with 2 mediators x 2 outcomes). Each is drawn; every text actually drawn is measured (with its bounding
box patch, if it has one) and the test fails on

- two texts whose extents overlap by more than ``TOL`` pixels in both directions (tick labels included: stacked
  ones pass only when they truly do not touch),
- a text outside the canvas,
- a diagram label (gid ``label:<key>``) outside its box (the patch with gid ``box:<key>``).

It can fail: run on the figures of commit ea35daa (with this branch's ``plots/style.py`` for ``renderer_of``), the
flow diagram fails ("Assessed at baseline (Before the programme) n = 184" overlaps the other arm's box, 18 x 37 px)
and the two ``standardised=True`` path diagrams fail (no such option). The box check needs the ``box:``/``label:``
gids the new diagrams set, so the old path diagram (labels outside their boxes) was only caught by eye.
``test_the_check_catches_overlaps`` keeps the check's power: it builds figures with an overlap, a label off the
canvas and a label outside its box, and asserts each is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TOL = 1.0  # pixels


def drawn_texts(fig) -> list[tuple[object, object]]:
    """Draw ``fig`` and return ``(text, extent)`` for every non-empty text drawn (extent includes its box)."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    from evaltoolkit.plots.style import renderer_of

    seen = []
    original = Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip() and self not in seen:
            seen.append(self)

    renderer = renderer_of(fig)
    Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        Text.draw = original
    out = []
    for t in seen:
        ext = t.get_window_extent(renderer)
        patch = t.get_bbox_patch()
        if patch is not None:
            ext = Bbox.union([ext, patch.get_window_extent(renderer)])
        out.append((t, ext))
    return out


def _name(t) -> str:
    return repr(" ".join(t.get_text().split())[:60])


def layout_problems(fig) -> list[str]:
    """Every overlap, off-canvas text and label outside its box in ``fig`` (empty when it is readable)."""
    texts = drawn_texts(fig)
    problems = []
    canvas = fig.bbox
    for t, e in texts:
        if (
            e.x0 < canvas.x0 - TOL
            or e.y0 < canvas.y0 - TOL
            or e.x1 > canvas.x1 + TOL
            or e.y1 > canvas.y1 + TOL
        ):
            problems.append(f"{_name(t)} lies outside the canvas ({e.bounds} in {canvas.bounds})")
    for i, (t, e) in enumerate(texts):
        for u, f in texts[i + 1 :]:
            w = min(e.x1, f.x1) - max(e.x0, f.x0)
            h = min(e.y1, f.y1) - max(e.y0, f.y0)
            if w > TOL and h > TOL:
                problems.append(f"{_name(t)} overlaps {_name(u)} ({w:.0f} x {h:.0f} px)")
    problems += _labels_outside_boxes(fig, texts)
    return problems


def _labels_outside_boxes(fig, texts) -> list[str]:
    from matplotlib.patches import Patch

    renderer = fig.canvas.get_renderer()
    boxes = {
        p.get_gid()[4:]: p.get_window_extent(renderer)
        for p in fig.findobj(Patch)
        if (p.get_gid() or "").startswith("box:")
    }
    out = []
    for t, e in texts:
        gid = t.get_gid() or ""
        if not gid.startswith("label:"):
            continue
        box = boxes.get(gid[6:])
        if box is None:
            out.append(f"{_name(t)} has no box")
        elif e.x0 < box.x0 - TOL or e.x1 > box.x1 + TOL or e.y0 < box.y0 - TOL or e.y1 > box.y1 + TOL:
            out.append(f"{_name(t)} lies outside its box ({e.bounds} vs {box.bounds})")
    return out


# --- the figures -----------------------------------------------------------------------------------------


@cache
def _plan():
    import evaltoolkit as et
    from evaltoolkit.design.schema import load_design
    from evaltoolkit.design.study import Study
    from evaltoolkit.plan.run import run_plan

    design = load_design(Path(__file__).resolve().parents[1] / "designs" / "ncs_prepost_control.yaml")
    sim = et.simulate_study(design, n=300, seed=1)
    return run_plan(Study(sim.design, sim.data), seed=1)


def _report_figure(alt: str) -> Callable[[], object]:
    def build():
        for sec in _plan().sections:
            for block in sec.figures():
                if block.alt.startswith(alt):
                    return block.figure
        pytest.fail(f"the plan drew no {alt!r} figure")

    return build


@cache
def _mediation(n_med: int, n_out: int):
    from evaltoolkit.estimators.mediation.paths import mediation

    rng = np.random.default_rng(5)
    df = pd.DataFrame({"programme": rng.integers(0, 2, 300)})
    meds = ["contact_quality", "intergroup_anxiety"][:n_med]
    outs = ["attitudes_to_other_ethnic_groups", "trust_in_neighbours"][:n_out]
    for m in meds:
        df[m] = 0.5 * df.programme + rng.normal(size=300)
    for o in outs:
        df[o] = 0.3 * df[meds].sum(axis=1) + 0.1 * df.programme + rng.normal(size=300)
    return mediation(df, "programme", meds, outs if n_out > 1 else outs[0], n_boot=200, seed=1)


def _path(n_med: int, n_out: int, **kw) -> Callable[[], object]:
    def build():
        from evaltoolkit.plots.mediation import path_diagram

        labels = {"programme": "National Citizen Service participants (vs comparison group)"}
        return path_diagram(_mediation(n_med, n_out), labels=labels, **kw)

    return build


def _meta():
    from evaltoolkit.estimators.meta import meta_analysis

    effects = [0.12, 0.35, 0.2, 0.05, 0.41, 0.28]
    ses = [0.08, 0.15, 0.1, 0.12, 0.2, 0.09]
    labels = ["Belfast 2019", "Oldham youth project", "Bradford schools linking", "A", "Leicester", "Kent"]
    return meta_analysis(effects, ses, labels=labels, method="REML")


def _small_flow():
    from evaltoolkit.plots.flow import consort_figure

    flow = pd.DataFrame(
        {
            "arm": ["t"] * 4 + ["c"] * 4,
            "stage": ["assessed", "followed_up", "lost", "analysed"] * 2,
            "wave": ["pre", "post", "post", "post"] * 2,
            "n": [40, 33, 7, 33, 52, 41, 11, 41],
        }
    )
    return consort_figure(flow, arm_labels={"t": "Programme", "c": "Comparison"})


def _plot(name: str, *args, **kw) -> Callable[[], object]:
    def build():
        from evaltoolkit import plots

        return getattr(plots, name)(*(a() if callable(a) else a for a in args), **kw)

    return build


FIGURES: dict[str, Callable[[], object]] = {
    "flow": _report_figure("CONSORT flow"),
    "flow, small counts": _small_flow,
    "love plot": _report_figure("love plot"),
    "event study": _report_figure("event study"),
    "forest": _report_figure("forest plot"),
    "means": _report_figure("means by arm and wave"),
    "moderation (JN)": _report_figure("moderation of"),
    "mediation path": _report_figure("path diagram"),
    "mediation sensitivity": _report_figure("sensitivity of the indirect effect"),
    "prior sensitivity": _report_figure("prior sensitivity"),
    "posterior": _report_figure("posterior of the effect"),
    "posterior predictive check": _report_figure("posterior predictive check"),
    "shrinkage": _report_figure("group effects"),
    "path 1x1 standardised": _path(1, 1, standardised=True),
    "path 2x1": _path(2, 1),
    "path 1x2": _path(1, 2),
    "path 2x2": _path(2, 2),
    "path 2x2 standardised": _path(2, 2, standardised=True),
    "indirect effects": _plot("indirect_effects_plot", lambda: _mediation(2, 2)),
    "priors": _plot("prior_plot", estimate=0.2, std_error=0.15),
    "meta forest": _plot("forest_plot", _meta),
    "meta funnel": _plot("funnel_plot", _meta),
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_is_readable(name):
    fig = FIGURES[name]()
    assert layout_problems(fig) == []


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_describes_itself(name):
    from evaltoolkit.plots.style import describe

    text = describe(FIGURES[name]())
    assert len(text) > 20 and any(ch.isdigit() for ch in text), text


def test_the_check_catches_overlaps():
    from evaltoolkit.plots.style import new_figure

    fig, ax = new_figure(width=3, height=2, layout=None)
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    ax.set_xlabel("an axis label far too long to fit on a figure three inches wide, so it runs off")
    problems = layout_problems(fig)
    assert any("overlaps" in p for p in problems) and any("outside the canvas" in p for p in problems)

    from matplotlib.patches import Rectangle

    fig, ax = new_figure(width=3, height=2, layout=None)
    ax.add_patch(Rectangle((0.4, 0.4), 0.1, 0.1, gid="box:x"))
    ax.text(0.45, 0.45, "a label wider than its box", gid="label:x", ha="center")
    assert any("outside its box" in p for p in layout_problems(fig))
