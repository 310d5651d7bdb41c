"""Configs that reject what they do not know.

Every key of a project config's ``model``, ``datasets.<name>`` (with its processors) and ``run``
sections must be one that a class reads. The known keys come from the classes themselves, not
from lists kept by hand:
- model and processors: the constructor parameters of the registered class (its whole MRO),
  plus LAVIS's checkpoint keys;
- datasets: the keys the builder class reads from its config (its source, LAVIS's base included)
  and those of its default config, down into ``build_info`` (its ``annotations.<split>`` and
  ``videos`` sections);
- run: the keys the runner, the task, LAVIS's task and distributed set-up and our launcher read
  (a key that only another registered runner reads is a warning: the chosen runner ignores it).

A file's problems are reported together, in one error naming the file, each with its section and
key. The vocabulary of SeViLA's and the official ViLA's YAMLs is mapped: a key or name we spell
differently points to ours, one we have no use for says "drop it" and why (no "did you mean" for
it: ``max_len`` is not ``max_iters``). A typo gets the closest known key; an unknown runner, task,
model, processor or dataset lists the registered ones. ``blip_question`` (named in every official
YAML, valid in LAVIS) is a warning: it lower-cases and strips the punctuation of every question and
option, which the official code, configuring it, never did.
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
NOT_GENERATED = "answers are scored over the options here; nothing is generated"
# The keys of SeViLA's and the official ViLA's YAMLs, per section: ours, or None (drop it) and why.
OFFICIAL_KEYS = {
    "model": {
        "n_frms": ("num_candidate_frames", ""),
        "frame_num": ("num_selected_frames", ""),
        "teacher_frame_num": ("num_candidate_frames", ""),
        "qformer_input_text": ("qformer_text_input", ""),
        "task": ("train_localizer", "sevila_baseline: True for SeViLA's train_loc_*, False for train_qa_with_loc_*"),
        "freeze_vit": (None, "the ViT is always frozen here"),
        "answer_num": (None, "each record's num_option gives the number of options"),
    },
    "processor": {"n_frms": ("num_frames", "")},
    "run": {
        "temp": (None, "the Gumbel temperature always anneals here, 1 -> 0.01 over 50 epochs as with temp: True; "
                       "run.temperature_start/end/epochs set it"),
        "max_len": (None, NOT_GENERATED),
        "min_len": (None, NOT_GENERATED),
        "num_beams": (None, NOT_GENERATED),
    },
}
# Their registry names -> ours.
OFFICIAL_NAMES = {
    "model": {"vila_ori": "vila_uniform", "sevila": "sevila_baseline"},
    "task": {"videoqa": "videoqa_mc"},
    "processor": {"blip2_video_train": "vila_video_train", "blip_video_eval": "vila_video_eval"},
}
GARBLING_PROCESSORS = {"blip_question": "vila_question"}


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


def resolve(kind: str, name: str, where: str, problems: list):
    """The registered class of ``name``, or of ours where it is an official name (a problem then)."""
    lookup = getattr(registry, f"get_{kind}_class")
    cls = lookup(name)
    if cls is not None:
        return cls
    ours = OFFICIAL_NAMES.get(kind, {}).get(name)
    if ours:
        problems.append(f"{where}: the official code's {kind} '{name}' is '{ours}' here")
        return lookup(ours)
    listing = getattr(registry, "list_datasets" if kind == "builder" else f"list_{kind}s")()
    problems.append(f"{where}: unknown {kind} '{name}'. Registered: {sorted(listing)}")
    return None


def registered(kind: str, name: str, where: str):
    problems = []
    cls = resolve(kind, name, where, problems)
    if problems:
        raise ConfigError(problems[0])
    return cls


def key_problems(section, known: set, where: str, official: dict = None) -> list:
    problems, unmatched = [], []
    for key in (section or {}):
        if key in known:
            continue
        if key in (official or {}):
            ours, why = official[key]
            hint = f"the official code's '{key}' is '{ours}' here" if ours else "drop it"
            problems.append(f"{where}: unknown key '{key}'; {hint}" + (f" ({why})" if why else ""))
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        (problems if close else unmatched).append(f"{where}: unknown key '{key}'" +
                                                  (f"; did you mean '{close[0]}'?" if close else ""))
    if unmatched:  # the known keys once per section
        unmatched[-1] += f". Known keys: {sorted(known)}"
    return problems + unmatched


def model_problems(model_cls, section, where: str) -> list:
    return key_problems(section, constructor_keys(model_cls) | CHECKPOINT_KEYS, where, OFFICIAL_KEYS["model"])


def check_model_section(model_cls, section, where: str) -> None:
    raise_problems(model_problems(model_cls, section, where), where)


def processor_problems(section, where: str, warn: bool) -> list:
    if not isinstance(section, (dict, DictConfig)) or "name" not in section:
        return []
    problems = []
    processor_cls = resolve("processor", section["name"], f"{where}.name", problems)
    if section["name"] in GARBLING_PROCESSORS and warn:
        logging.warning("%s.name: %s lower-cases every question and option and strips their punctuation, which "
                        "the official code, configuring it, never applied; %s keeps them as written", where,
                        section["name"], GARBLING_PROCESSORS[section["name"]])
    if processor_cls is not None:
        problems += key_problems(section, constructor_keys(processor_cls) | {"name"}, where, OFFICIAL_KEYS["processor"])
    return problems


def run_keys(runner_cls, task_cls) -> set:
    from lavis import tasks

    from lavis_vila import run_setup
    from lavis_vila.tasks import global_batch

    readers = source_classes(runner_cls) + source_classes(task_cls) + [tasks.setup_task, run_setup, global_batch]
    return keys_read(readers, names=("config", "run_cfg", "run")) | keys_read([dist_utils.init_distributed_mode],
                                                                              names=("args",))


def run_problems(run, where: str, warn: bool) -> list:
    """Keys the chosen runner ignores but another registered runner reads are warned about."""
    problems = []
    runner_name = run.get("runner", "runner_base")
    runner_cls = resolve("runner", runner_name, f"{where}.runner", problems)
    task_cls = resolve("task", run.get("task"), f"{where}.task", problems)
    if runner_cls is None or task_cls is None:
        return problems
    known = run_keys(runner_cls, task_cls)
    elsewhere = {}
    for other in registry.list_runners():
        for key in run_keys(registry.get_runner_class(other), task_cls) - known:
            elsewhere.setdefault(key, []).append(other)
    for key in sorted(set(run) & set(elsewhere)) if warn else []:
        logging.warning("%s.%s is read by %s only; %s ignores it", where, key, " and ".join(elsewhere[key]),
                        runner_name)
    return problems + key_problems(run, known | set(elsewhere), where, OFFICIAL_KEYS["run"])


def config_problems(config, source: str, warn: bool = False) -> list:
    """Every problem of a config (model, datasets with their processors, run), as messages."""
    problems = run_problems(config.get("run") or {}, f"{source}: run", warn)
    model = config.get("model") or {}
    model_cls = resolve("model", model["arch"], f"{source}: model.arch", problems) if model.get("arch") else None
    if model_cls is not None:
        problems += model_problems(model_cls, model, f"{source}: model")
    for name, dataset in (config.get("datasets") or {}).items():
        dataset = dataset or {}
        builder_cls = resolve("builder", name, f"{source}: datasets", problems)
        if builder_cls is None:
            continue
        defaults = OmegaConf.load(builder_cls.default_config_path()).datasets[name]
        known = keys_read(source_classes(builder_cls) + [BaseDatasetBuilder]) | set(defaults) | {"type"}
        problems += key_problems(dataset, known, f"{source}: datasets.{name}")
        problems += build_info_problems(dataset.get("build_info"), builder_cls, defaults, f"{source}: datasets.{name}")
        for kind in ("vis_processor", "text_processor"):
            for split, section in (dataset.get(kind) or {}).items():
                problems += processor_problems(section, f"{source}: datasets.{name}.{kind}.{split}", warn)
        problems += frame_count_problems(model, dataset, f"{source}: datasets.{name}")
    return problems


def build_info_problems(build_info, builder_cls, defaults, where: str) -> list:
    """``build_info`` and its ``annotations.<split>`` and ``videos`` sections: the keys the builders
    read (``build_info.<key>``, ``info.<key>`` per split, ``videos.<key>``) and the default config's."""
    if not isinstance(build_info, (dict, DictConfig)):
        return []
    readers = source_classes(builder_cls) + [BaseDatasetBuilder]
    default_info = defaults.get("build_info") or {}
    where = f"{where}.build_info"
    problems = key_problems(build_info, keys_read(readers, names=("build_info",)) | set(default_info), where)
    split_keys = keys_read(readers, names=("info",))
    for split, section in (build_info.get("annotations") or {}).items():
        if isinstance(section, (dict, DictConfig)):
            problems += key_problems(section, split_keys, f"{where}.annotations.{split}")
    videos = build_info.get("videos")
    if isinstance(videos, (dict, DictConfig)):
        known = keys_read(readers, names=("videos",)) | set(default_info.get("videos") or {})
        problems += key_problems(videos, known, f"{where}.videos")
    return problems


def raise_problems(problems: list, source: str) -> None:
    """One error for all of a file's problems; a single one reads as before."""
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        listing = "\n".join(f"  - {p[len(source) + 2:] if p.startswith(f'{source}: ') else p}" for p in problems)
        raise ConfigError(f"{source}: {len(problems)} problems, all of them:\n{listing}")


def check_names(config, source: str) -> None:
    """The YAML and its options as written, before LAVIS's ``Config`` asserts on a name: every problem."""
    raise_problems(config_problems(config, source), source)


def check_config(cfg, source: str) -> None:
    """Check a LAVIS ``Config`` (model, datasets with their processors, run) or raise ``ConfigError``."""
    raise_problems(config_problems(cfg.config, source, warn=True), source)


def frame_count_problems(model, dataset, where: str) -> list:
    """A frame selector must receive all of its T candidates from each video processor that feeds it
    (SeViLA's self-refinement, ``train_localizer``, judges each training frame alone: any count there)."""
    expected = model.get("num_candidate_frames")
    if expected is None:
        return []
    problems = []
    for split, section in (dataset.get("vis_processor") or {}).items():
        if split == "train" and model.get("train_localizer"):
            continue
        frames = (section or {}).get("num_frames")
        if frames is not None and frames != expected:
            problems.append(f"{where}.vis_processor.{split}.num_frames is {frames} but model.num_candidate_frames is "
                            f"{expected}: the processor must give the model all of its candidate frames")
    return problems


def config_source(cfg) -> str:
    """The project YAML a LAVIS ``Config`` (or the launcher's parsed arguments) came from, and
    whether ``--options`` override it."""
    args = getattr(cfg, "args", cfg)
    path = getattr(args, "cfg_path", None)
    return f"{path} (with --options)" if path and getattr(args, "options", None) else str(path or "config")

