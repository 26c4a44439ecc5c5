"""On PYTHONPATH of a command under test (test_ray_serve): each call of ray.shutdown appends the
calling process's id to the file $MASKWATCH_RAY_SHUTDOWNS, then runs it. A stop that ends
without ray.shutdown (Serve's stop unfinished beside it, the GCS gone) is told apart from one that
retried the dead GCS by what it did, not by how long it took."""

import importlib.abc
import importlib.util
import os
import sys


class _WrapShutdownOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "ray":
            return None
        sys.meta_path.remove(self)  # the real finders find ray
        spec = importlib.util.find_spec("ray")
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            shutdown = module.shutdown

            def said_shutdown(*args, **kwargs):
                with open(os.environ["MASKWATCH_RAY_SHUTDOWNS"], "a") as said:
                    said.write(f"{os.getpid()}\n")
                return shutdown(*args, **kwargs)

            module.shutdown = said_shutdown

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("MASKWATCH_RAY_SHUTDOWNS"):
    sys.meta_path.insert(0, _WrapShutdownOnImport())
