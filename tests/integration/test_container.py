"""Dockerfile, singularity.def and the package agree (the image itself is built by .ci/container).

No container engine runs during the test suite: these tests parse the recipes with spython and
check them against pyproject.toml, the package and each other. `.ci/container` builds the image
with podman and runs the demo inside it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bids_w2v import __version__
from bids_w2v.cli.boutiques import ENVIRONMENT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

parsers = pytest.importorskip("spython.main.parse.parsers")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)(\s*;.*)?$")  # marker allowed


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        match = PIN.match(requirement.strip())
        assert match, f"{requirement!r} is not pinned exactly"
        pins[match[1].lower().split("[")[0]] = match[2]
    return pins


def _stages() -> dict:
    return parsers.DockerParser(str(ROOT / "Dockerfile")).recipe


def _runtime():
    """The last stage of the Dockerfile: the image that runs."""
    return list(_stages().values())[-1]


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def _dockerfile_args() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    return dict(re.findall(r"^ARG (\w+)=?(\S*)", text, flags=re.M))


def _last_stage_text() -> str:
    text = (ROOT / "Dockerfile").read_text()
    return text[text.rindex("\nFROM ") :]


def _singularity_text() -> str:
    return (ROOT / "singularity.def").read_text()


def test_singularity_runscript_and_environment_match_the_dockerfile():
    runtime = _runtime()
    recipe = list(parsers.SingularityParser(str(ROOT / "singularity.def")).recipe.values())[0]
    assert runtime.entrypoint == ["bids-w2v"]
    # %runscript passes every argument to the Dockerfile's ENTRYPOINT
    assert recipe.cmd.split() == ["exec", *runtime.entrypoint, '"$@"']
    # %environment exports exactly the Dockerfile's runtime ENV (apptainer run --cleanenv)
    assert _env(recipe.environ) == _env(runtime.environ)
    header = _singularity_text().splitlines()[0]
    assert header.split() in (["Bootstrap:", "docker-archive"], ["Bootstrap:", "docker-daemon"])
    assert re.search(r"^%test\s+bids-w2v --version$", _singularity_text(), flags=re.M)


def test_runtime_environment_is_offline_and_telemetry_free():
    env = _env(_runtime().environ)
    for name, value in ENVIRONMENT.items():  # the Boutiques descriptor's environment too
        assert env[name] == value, name
    assert env["HF_HUB_OFFLINE"] == "1" and env["NIPYPE_NO_ET"] == "1"
    assert env["HF_HOME"].startswith("/opt/") and env["TEMPLATEFLOW_HOME"].startswith("/opt/")
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    # build-time variables do not leak into the runtime image
    assert not {"DEBIAN_FRONTEND", "PIP_NO_CACHE_DIR"} & set(env)


def test_image_runs_as_a_non_root_user_with_oci_labels():
    last = _last_stage_text()
    users = re.findall(r"^USER (\S+)", last, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(rf"useradd .*{users[-1]}$", last, flags=re.M)
    labels = dict(re.findall(r"(org\.opencontainers\.image\.\w+)=\"([^\"]*)\"", last))
    assert {"title", "description", "version", "licenses", "revision", "created"} <= {
        key.rsplit(".", 1)[1] for key in labels
    }
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert _dockerfile_args()["VERSION"] == __version__


def test_dockerfile_pins_match_pyproject():
    """The image installs the package's own pins; the few the Dockerfile names agree with them."""
    pins = _pins(PYPROJECT["project"]["dependencies"])
    args = _dockerfile_args()
    assert args["TORCH_VERSION"] == pins["torch"]
    text = (ROOT / "Dockerfile").read_text()
    named = dict(re.findall(r"\b([A-Za-z][\w.\-]*)==([\w.$]+)", text))
    for package, version in named.items():
        version = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m[1]], version)
        assert pins.get(package.lower()) == version, package
    # everything else comes from pyproject.toml: the build installs the project itself
    assert re.search(r"pip install .*\s\.\s*;", text)
    python = re.search(r"python:(\d+)\.(\d+)", args["BASE_IMAGE"])
    required = re.search(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert tuple(map(int, python.groups())) >= tuple(map(int, required.groups()))


def test_dockerfile_build_arguments():
    args = _dockerfile_args()
    assert args["TORCH_VARIANT"] == "cpu"  # CPU torch unless a CUDA build is asked for
    assert "${TORCH_VARIANT}" in args["TORCH_INDEX_URL"]
    for name in ("BASE_IMAGE", "WHEELHOUSE", "MODELS_DIR", "HF_CACHE_DIR", "HF_MODELS"):
        assert name in args, name
    assert "TEMPLATEFLOW_DIR" in args and "TEMPLATEFLOW_TEMPLATES" in args
    assert re.search(r"--no-index --find-links", (ROOT / "Dockerfile").read_text())


def test_dockerignore_keeps_the_context_small_but_complete():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "work", "demo_out"} <= ignored
    assert not {"pyproject.toml", "README.md", "bids_w2v", ".container-build"} & ignored


def test_ci_builds_the_image():
    script = ROOT / ".ci" / "container"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "bash .ci/container" in (ROOT / ".ci" / "run").read_text()
    packages = (ROOT / ".ci" / "apt-packages.txt").read_text().split()
    assert {"podman", "buildah", "debootstrap"} <= set(packages)
