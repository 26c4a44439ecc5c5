"""On PYTHONPATH of a command under test (test_ray_serve): each call of ray.shutdown appends the
calling process's id to the file $MASKWATCH_RAY_SHUTDOWNS, then runs it. A stop that ends
without ray.shutdown (Serve's stop unfinished beside it, the GCS gone) is told apart from one that
retried the dead GCS by what it did, not by how long it took. The call Ray's atexit makes at
Python's exit (a stop that exits instead of os._exit) is told too: it retries the dead GCS as well.
The sitecustomize this one shadows on sys.path, if any, runs after it."""

import atexit
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys


def _said(shutdown):
    def said_shutdown(*args, **kwargs):
        with open(os.environ["MASKWATCH_RAY_SHUTDOWNS"], "a") as said:
            said.write(f"{os.getpid()}\n")
        return shutdown(*args, **kwargs)

    return said_shutdown


def _is_rays_shutdown(function) -> bool:
    return getattr(function, "__module__", None) == "ray._private.worker" and function.__name__ == "shutdown"


class _WrapShutdownOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "ray":
            return None
        sys.meta_path.remove(self)  # the real finders find ray
        spec = importlib.util.find_spec("ray")
        load = spec.loader.exec_module

        def exec_module(module):
            register = atexit.register

            def register_said(function, *args, **kwargs):  # ray._private.worker's, at its import
                return register(_said(function) if _is_rays_shutdown(function) else function, *args, **kwargs)

            atexit.register = register_said  # in its place among the exit's calls
            try:
                load(module)
            finally:
                atexit.register = register
            module.shutdown = _said(module.shutdown)

        spec.loader.exec_module = exec_module
        return spec


def _run_the_shadowed_one() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if os.environ.get("MASKWATCH_RAY_SHUTDOWNS"):
    sys.meta_path.insert(0, _WrapShutdownOnImport())
_run_the_shadowed_one()
