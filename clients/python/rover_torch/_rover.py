"""The sibling stdlib client (clients/python/rover_client.py), loaded by path once per process."""
import importlib.util, os, sys


def _load():
    if "rover_client" in sys.modules:
        return sys.modules["rover_client"]
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rover_client.py")
    spec = importlib.util.spec_from_file_location("rover_client", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["rover_client"] = module
    spec.loader.exec_module(module)
    return module


rover_client = _load()
