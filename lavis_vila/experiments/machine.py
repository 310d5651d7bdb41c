"""The machine a figure comes from, recorded next to it (CPU or GPU model, library versions)."""
import datetime
import platform


def cpu_info() -> dict:
    """The CPU's model name and flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return {"model": platform.processor() or "?", "flags": set()}
    field = lambda name: next((l.split(":", 1)[1].strip() for l in lines if l.startswith(name)), "")  # noqa: E731,E741
    return {"model": field("model name") or "?", "flags": set(field("flags").split())}


def describe() -> dict:
    """Date, Python, torch and transformers versions, the CPU, and the GPU if one is visible."""
    import torch
    import transformers

    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "cpu": cpu_info()["model"]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info
