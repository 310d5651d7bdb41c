"""The picture of a model's frame choice: every candidate frame, the chosen ones framed in red, and
under each its selection probability within its segment.

    from lavis_vila.frame_strip import draw_strip
    draw_strip([answer], "strip.png")    # answers of lavis_vila.inference.answer, one row per question
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lavis_vila.prompts import answer_text  # noqa: E402


def draw_strip(answers: list, path) -> None:
    """Draw ``answers`` (``inference.Answer``s on one video, one row each) as a PNG to ``path`` (a file
    name or a binary file). A model without a Frame-Prompter draws no probabilities."""
    num_frames = answers[0].pixels.shape[0]
    figure = plt.figure(figsize=(max(8, 0.9 * num_frames), 3.2 * len(answers)), layout="constrained")
    for answer, panel in zip(answers, figure.subfigures(len(answers), 1, squeeze=False)[:, 0]):
        segments = answer.probabilities or [[None] * num_frames]  # (K, T/K)
        probabilities = [p for segment in segments for p in segment]  # (T,)
        segment_len = len(segments[0])
        chosen = set(answer.frame_idx)
        axes = panel.subplots(2, num_frames, gridspec_kw={"height_ratios": [3, 1.3]}, squeeze=False)
        for t in range(num_frames):
            image_axis, bar_axis = axes[0, t], axes[1, t]
            image_axis.imshow(answer.pixels[t].permute(1, 2, 0).numpy())
            image_axis.set_xticks([])
            image_axis.set_yticks([])
            picked = t in chosen
            for spine in image_axis.spines.values():
                spine.set_edgecolor("red" if picked else "lightgrey")
                spine.set_linewidth(4 if picked else 1)
            image_axis.set_title(f"{t}", fontsize=8, color="red" if picked else "black")
            if probabilities[t] is not None:
                bar_axis.bar([0], [probabilities[t]], color="red" if picked else "grey", width=0.6)
            bar_axis.set_ylim(0, 1)
            bar_axis.set_xticks([])
            bar_axis.set_yticks([0, 1] if t == 0 else [])
            bar_axis.tick_params(labelsize=7)
            if t % segment_len == 0 and answer.probabilities:
                bar_axis.set_xlabel(f"segment {t // segment_len + 1}", fontsize=7, loc="left")
        axes[1, 0].set_ylabel("p(select)", fontsize=7)
        panel.suptitle(f"Q: {answer.question}  ->  {answer_text(answer.option)}: {answer.text}   "
                       f"(chosen frames {answer.frame_idx})", fontsize=9)
    figure.savefig(path, dpi=110)
    plt.close(figure)
