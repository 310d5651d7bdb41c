"""Idempotent registration with LAVIS's registry.

LAVIS's ``register_*`` decorators raise ``KeyError`` when a name is taken. Re-executing one of
our modules (``importlib.reload``, a second import under another path) would then fail, so
these wrappers accept a re-registration of the *same* class (same module and qualified name)
and still refuse a clash with anything else.

LAVIS's registry is imported on use: importing LAVIS registers this package's classes, which
use these decorators, so this module must be complete before LAVIS is imported.
"""
_MAPPINGS = {
    "model": "model_name_mapping",
    "processor": "processor_name_mapping",
    "builder": "builder_name_mapping",
    "task": "task_name_mapping",
    "runner": "runner_name_mapping",
}


def _register(kind: str, name: str):
    from lavis.common.registry import registry

    lavis_decorator = getattr(registry, f"register_{kind}")(name)

    def wrap(cls):
        mapping = registry.mapping[_MAPPINGS[kind]]
        existing = mapping.get(name)
        if existing is not None and (existing.__module__, existing.__qualname__) == (
            cls.__module__,
            cls.__qualname__,
        ):
            mapping[name] = cls
            return cls
        return lavis_decorator(cls)

    return wrap


def register_model(name):
    return _register("model", name)


def register_processor(name):
    return _register("processor", name)


def register_builder(name):
    return _register("builder", name)


def register_task(name):
    return _register("task", name)


def register_runner(name):
    return _register("runner", name)
