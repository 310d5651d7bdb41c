"""Configs that reject what they do not know.

Every key of a project config's ``model``, ``datasets.<name>`` (with its processors) and ``run``
sections must be one that a class reads. The known keys come from the classes themselves, not
from lists kept by hand:
- model and processors: the constructor parameters of the registered class (its whole MRO),
  plus LAVIS's checkpoint keys;
- datasets: the keys the builder class reads from its config (its source, LAVIS's base included)
  and those of its default config;
- run: the keys the runner, the task, LAVIS's task and distributed set-up and our launcher read
  (a key that only another registered runner reads is a warning: the chosen runner ignores it).

An unknown key is an error naming the file, the section and the key, with the closest known key
(or, for SeViLA's names, ours). An unknown runner, task, model, processor or dataset lists the
registered ones.
"""
import difflib
import logging
import re
from inspect import getsource, signature

from lavis.common import dist_utils
from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder
from omegaconf import DictConfig, OmegaConf

# Keys of LAVIS's BaseModel.load_checkpoint_from_config, which our models keep.
CHECKPOINT_KEYS = {"arch", "model_type", "pretrained", "finetuned", "load_finetuned"}
# SeViLA / official ViLA names -> ours, per section.
SEVILA_NAMES = {
    "model": {"n_frms": "num_candidate_frames", "frame_num": "num_selected_frames"},
    "processor": {"n_frms": "num_frames"},
}


class ConfigError(ValueError):
    pass


def constructor_keys(cls) -> set:
    """Named parameters of every ``__init__`` along the MRO (``**kwargs`` passes them on)."""
    keys = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for name, param in signature(init).parameters.items():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and name not in ("self", "empty"):
                keys.add(name)
    return keys


def keys_read(objects, names=("config", "run_cfg", "run", "args")) -> set:
    """Config keys read in the source of ``objects``: ``<name>.key`` and ``<name>.get("key"``."""
    variable = "|".join(["config\\.run_cfg", *names])  # self.config.run_cfg.key: the longest name first
    pattern = re.compile(rf"\b(?:{variable})\.(?:get\(\s*[\"']([a-z_]\w*)[\"']|(?!get\b)([a-z_]\w*)\b(?!\s*\())")
    keys = set()
    for obj in objects:
        for got, attribute in pattern.findall(getsource(obj)):
            keys.add(got or attribute)
    return keys - {"run_cfg"}


def source_classes(cls) -> list:
    """The classes of ``cls``'s MRO written in LAVIS or here (whose sources say what they read)."""
    return [k for k in cls.__mro__ if k.__module__.split(".")[0] in ("lavis", "lavis_vila")]


def registered(kind: str, name: str, where: str):
    cls = getattr(registry, f"get_{kind}_class")(name)
    if cls is None:
        listing = getattr(registry, "list_datasets" if kind == "builder" else f"list_{kind}s")()
        raise ConfigError(f"{where}: unknown {kind} '{name}'. Registered: {sorted(listing)}")
    return cls


def check_keys(section, known: set, where: str, aliases: dict = None) -> None:
    for key in (section or {}):
        if key in known:
            continue
        ours = (aliases or {}).get(key)
        if ours:
            hint = f"; SeViLA's '{key}' is '{ours}' here"
        else:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: unknown key '{key}'{hint} Known keys: {sorted(known)}")


def check_model_section(model_cls, section, where: str) -> None:
    check_keys(section, constructor_keys(model_cls) | CHECKPOINT_KEYS, where, SEVILA_NAMES["model"])


def check_processor_section(section, where: str) -> None:
    if not isinstance(section, (dict, DictConfig)) or "name" not in section:
        return
    processor_cls = registered("processor", section["name"], f"{where}.name")
    check_keys(section, constructor_keys(processor_cls) | {"name"}, where, SEVILA_NAMES["processor"])


def run_keys(runner_cls, task_cls) -> set:
    from lavis import tasks

    from lavis_vila import run_setup
    from lavis_vila.tasks import global_batch

    readers = source_classes(runner_cls) + source_classes(task_cls) + [tasks.setup_task, run_setup, global_batch]
    return keys_read(readers, names=("config", "run_cfg", "run")) | keys_read([dist_utils.init_distributed_mode],
                                                                              names=("args",))


def check_run_section(run, source: str) -> None:
    """Keys the chosen runner ignores but another registered runner reads are warned about."""
    runner_name = run.get("runner", "runner_base")
    task_cls = registry.get_task_class(run.task)
    known = run_keys(registry.get_runner_class(runner_name), task_cls)
    elsewhere = {}
    for other in registry.list_runners():
        for key in run_keys(registry.get_runner_class(other), task_cls) - known:
            elsewhere.setdefault(key, []).append(other)
    for key in set(run) & set(elsewhere):
        logging.warning("%s: run.%s is read by %s only; %s ignores it", source, key, " and ".join(elsewhere[key]),
                        runner_name)
    check_keys(run, known | set(elsewhere), f"{source}: run")


def check_names(config, source: str) -> None:
    """The registry names a config uses (task, runner, model); before LAVIS's ``Config`` asserts."""
    run = config.get("run", {})
    registered("task", run.get("task"), f"{source}: run.task")
    registered("runner", run.get("runner", "runner_base"), f"{source}: run.runner")
    if config.get("model", {}).get("arch") is not None:
        registered("model", config.model.arch, f"{source}: model.arch")


def check_config(cfg, source: str) -> None:
    """Check a LAVIS ``Config`` (model, datasets with their processors, run) or raise ``ConfigError``."""
    config = cfg.config
    run = cfg.run_cfg
    check_names(config, source)
    model_cls = registry.get_model_class(cfg.model_cfg.arch)
    check_model_section(model_cls, cfg.model_cfg, f"{source}: model")
    check_run_section(run, source)
    for name, dataset in (cfg.datasets_cfg or {}).items():
        builder_cls = registered("builder", name, f"{source}: datasets")
        defaults = OmegaConf.load(builder_cls.default_config_path()).datasets[name]
        known = keys_read(source_classes(builder_cls) + [BaseDatasetBuilder]) | set(defaults) | {"type"}
        check_keys(dataset, known, f"{source}: datasets.{name}")
        for kind in ("vis_processor", "text_processor"):
            for split, section in (dataset.get(kind) or {}).items():
                check_processor_section(section, f"{source}: datasets.{name}.{kind}.{split}")
        check_frame_counts(cfg.model_cfg, dataset, f"{source}: datasets.{name}")


def check_frame_counts(model, dataset, where: str) -> None:
    """A frame selector must receive all of its T candidates from each video processor."""
    expected = model.get("num_candidate_frames")
    if expected is None:
        return
    for split, section in (dataset.get("vis_processor") or {}).items():
        frames = (section or {}).get("num_frames")
        if frames is not None and frames != expected:
            raise ConfigError(f"{where}.vis_processor.{split}.num_frames is {frames} but model.num_candidate_frames is "
                              f"{expected}: the processor must give the model all of its candidate frames")


def config_source(cfg) -> str:
    """The project YAML a LAVIS ``Config`` came from (and that ``--options`` may override)."""
    args = getattr(cfg, "args", None)
    path = getattr(args, "cfg_path", None)
    return f"{path} (with --options)" if path and getattr(args, "options", None) else str(path or "config")

