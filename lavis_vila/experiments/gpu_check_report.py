"""The GPU check's report: ``gpu_check.json`` and ``gpu_check.md``, rewritten after every step."""
import json
import os

from lavis_vila.atomic_files import write_text
from lavis_vila.experiments.bench_report import Row, format_table, summary

CANDIDATE_FRAMES, SELECTED_FRAMES = 32, 4
STACK_TESTS = ("tests/test_lavis_compat.py", "tests/test_hf_weights.py", "tests/test_saved_model.py")


def write_report(report: dict, out: str) -> None:
    """Both files, each replaced whole: a reader never sees half of one."""
    for name, text in (("gpu_check.json", json.dumps(report, indent=2)), ("gpu_check.md", markdown(report))):
        write_text(os.path.join(out, name), text)


def markdown(report: dict) -> str:
    """The machine, the stack's tests, one row per training run, then each bench's table and ratios."""
    where = report["machine"].get("gpu") or f"CPU: {report['machine'].get('cpu')}"
    lines = [f"# GPU check ({'dry run, tiny' if report['dry_run'] else 'flant5xl, random weights'}), {where}, "
             f"{report['machine']['date']}", "",
             f"torch {report['machine']['torch']}, transformers {report['machine']['transformers']}, "
             f"python {report['machine']['python']}", "",
             f"ViLA {CANDIDATE_FRAMES}->{SELECTED_FRAMES}, run.amp True (fp16 autocast + GradScaler), fp16 ViT, "
             f"bf16 T5, batch {report['batch_size']}, {report['steps']} steps, torchrun --nproc_per_node=1", "",
             *[f"tests of this stack ({', '.join(r['files'])}): {r['status']}, "
               f"{', '.join(f'{r[k]} {k}' for k in ('passed', 'failed', 'skipped', 'error', 'errors') if k in r)} "
               f"in {r['seconds']} s" for r in report["steps_run"] if r["step"] == "tests"], "",
             "| runner | status | seconds | losses logged | all finite | first -> last loss | peak GPU MiB | val questions | val accuracy % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["steps_run"]:
        if r["step"] != "train":
            continue
        if r["status"] == "skipped":
            lines.append(f"| {r['runner']} | skipped: {r['reason']} | | | | | | | |")
            continue
        loss = f"{r['first_loss']:.3f} -> {r['last_loss']:.3f}" if r["first_loss"] is not None else "-"
        lines.append(f"| {r['runner']} | {r['status']} | {r['seconds']} | {r['logged_losses']} | {r['all_losses_finite']} "
                     f"| {loss} | {r['peak_gpu_mem_mb'] or '-'} | {r['val_questions']} | {r['val_accuracy']} |")
    for r in report["steps_run"]:
        if r["step"] != "bench":
            continue
        lines += ["", f"bench, bf16, batch {r['batch_size']}: {r['status']}"]
        if r["status"] == "ok":
            rows = [Row(**row) for row in r["rows"]]
            lines += ["", format_table(rows), "", "```", summary(rows), "```"]
    return "\n".join(lines) + "\n"
