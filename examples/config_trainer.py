"""A trainer that takes its learning rate from the job's Brain configuration and follows edits.

At start it reads the configuration (client.config(): the version the agent passed as
ROVER_CONFIG_VERSION); a background thread watches for newer versions (client.watch_config(),
a long poll with the job token) and swaps the learning rate in between two steps. The value is
`configure.trainer.learningRate` of the merged configuration, e.g. a Brain YAML file:

    name: lr
    include: {name: config-demo}
    configure: {trainer: {learningRate: 0.05}}

Run it under Rover (it needs the agent's ROVER_* environment):
    python3 examples/config_trainer.py --steps 2000 --lr-log /tmp/lr.log
"""
import argparse, importlib.util, os, sys, threading, time

_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python", "rover_client.py")
spec = importlib.util.spec_from_file_location("rover_client", _CLIENT)
rover_client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rover_client)


def learning_rate(config, default):
    value = (config.get("configure") or {}).get("trainer", {}).get("learningRate", default)
    return float(value) if isinstance(value, (int, float)) else default


class Hyperparameters:
    """The learning rate the training loop reads, replaced whole by the watcher thread."""

    def __init__(self, lr, version):
        self.lock = threading.Lock()
        self.lr, self.version = lr, version

    def set(self, lr, version):
        with self.lock:
            old, self.lr, self.version = self.lr, lr, version
        return old

    def get(self):
        with self.lock:
            return self.lr, self.version


def log_lr(path, version, lr):
    print(f"config version {version}: learning rate {lr}", flush=True)
    if path:
        with open(path, "a") as f:
            f.write(f"{version} {lr}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--step-time", type=float, default=0.05, help="seconds per step")
    p.add_argument("--default-lr", type=float, default=0.1, help="when the configuration sets none")
    p.add_argument("--lr-log", help="append 'version learning-rate' here at start and on each change")
    args = p.parse_args()

    client = rover_client.Client()
    current = client.config()
    hp = Hyperparameters(learning_rate(current, args.default_lr), current["version"])
    print(f"started with configuration version {client.env.config_version or 'unknown'} (ROVER_CONFIG_VERSION)", flush=True)
    log_lr(args.lr_log, current["version"], hp.lr)

    def watch():
        try:
            for config in client.watch_config(wait=30):
                lr = learning_rate(config, args.default_lr)
                old = hp.set(lr, config["version"])
                if lr != old:
                    log_lr(args.lr_log, config["version"], lr)
        except rover_client.RoverError as e:  # the job is ending: the API refuses or is gone
            print(f"config watch stopped: {e}", file=sys.stderr, flush=True)

    # Started after the first read, so the watcher begins from the version the loop already has.
    client.env.config_version = current["version"]
    threading.Thread(target=watch, daemon=True).start()

    w = 0.0  # fits y = 2x by SGD with whatever learning rate is current
    for step in range(1, args.steps + 1):
        lr, _ = hp.get()
        x = (step % 10) / 10
        w -= lr * 2 * (w * x - 2 * x) * x
        time.sleep(args.step_time)
        if step % 100 == 0:
            print(f"step {step} w={w:.4f} lr={lr}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
