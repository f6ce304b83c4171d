"""The stock `rasa init` bot, for comparison: trained once per Rasa version, then cached.

`rasa init --no-prompt --init-dir <tmp>` writes Rasa's example project and trains its default
model there (a few minutes on 2 cores: DIET, TED, UnexpecTED, ResponseSelector, 100 epochs each).
The trained model is kept in .cache/bench-stock/rasa-<version>/stock.tar.gz, with the project's
domain and data next to it, so later runs reuse it.

The init bot needs no action server: its domain has no custom actions and its actions.py is
all comments (checked below, so a future Rasa version that changes this fails loudly).
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
CACHE = ROOT / ".cache" / "bench-stock"


def rasa_version() -> str:
    out = subprocess.run([str(BIN / "python"), "-c", "import rasa; print(rasa.__version__)"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def cache_dir() -> Path:
    return CACHE / f"rasa-{rasa_version()}"


def _check_no_custom_actions(project: Path) -> None:
    code = [line for line in (project / "actions" / "actions.py").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    domain = (project / "domain.yml").read_text()
    if code or "\nactions:" in domain:
        raise RuntimeError("the stock init bot now uses custom actions: the benchmark would need "
                           "its action server")


def stock_model(env: dict, log=print) -> Path:
    """The cached stock model, training it first if needed."""
    target = cache_dir()
    model = target / "stock.tar.gz"
    if model.exists():
        return model
    log(f"Training the stock `rasa init` bot once (a few minutes); cached in {target}")
    with tempfile.TemporaryDirectory(prefix="bench-stock-") as tmp:
        project = Path(tmp) / "init"
        project.mkdir()
        with open(Path(tmp) / "init.log", "wb") as out:
            result = subprocess.run([str(BIN / "rasa"), "init", "--no-prompt", "--init-dir",
                                     str(project)], cwd=tmp, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            sys.stderr.write((Path(tmp) / "init.log").read_text(errors="replace")[-4000:])
            raise RuntimeError(f"rasa init failed with {result.returncode}")
        _check_no_custom_actions(project)
        models = sorted((project / "models").glob("*.tar.gz"))
        if len(models) != 1:
            raise RuntimeError(f"rasa init left {len(models)} models, expected 1")
        target.mkdir(parents=True, exist_ok=True)
        for name in ("domain.yml", "config.yml", "endpoints.yml", "credentials.yml", "data"):
            src = project / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, target / name,
                                                                 **({"dirs_exist_ok": True} if src.is_dir() else {}))
        partial = target / "stock.tar.gz.partial"
        shutil.copy2(models[0], partial)
        partial.rename(model)  # atomic: a half-copied model is never taken for a cached one
    return model


if __name__ == "__main__":
    import os
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TQDM_DISABLE="1",
               TF_CPP_MIN_LOG_LEVEL="2", SQLALCHEMY_SILENCE_UBER_WARNING="1")
    print(stock_model(env))
