"""steady_memory: the malloc settings a long-running site process starts with."""

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_steady_memory_sets_both_malloc_options_on_glibc():
    # In a fresh process, as `maskwatch run` calls it before any thread starts.
    code = "from maskwatch.runtime import steady_memory; print(steady_memory())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
