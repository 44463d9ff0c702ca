"""The GitHub Pages workflow: it builds the book with the README's command and publishes the folder
that command writes the site to. (The workflow itself only runs on GitHub.)"""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "deploy-book.yml"


def workflow():
    text = WORKFLOW.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps():
    (job,) = workflow()["jobs"].values()
    return job["steps"]


def step_using(action):
    found = [s for s in steps() if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"expected one step using {action}, found {len(found)}"
    return found[0]


def readme_build_command():
    """The first command of the README's quick start (the book build), without its comment."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", quick_start, flags=re.S).group(1)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    return next(c for c in commands if "build" in c)


def html_folder_of_build_script():
    """The folder scripts/build_book.sh says it wrote the site to (relative to the repository root)."""
    script = (REPO / "scripts" / "build_book.sh").read_text(encoding="utf-8")
    variables = {name: value for name, _, value in
                 re.findall(r'^\s*(?:export\s+|local\s+)?(\w+)=(["\']?)([^"\'\s]*)\2\s*$', script, flags=re.M)}
    said = re.findall(r'echo\s+"[^"]*?(\S+)/index\.html', script)
    assert said, "scripts/build_book.sh no longer says where the book is (…/index.html)"
    folder = said[-1]
    for _ in range(5):  # expand $VAR and ${VAR} defined in the script
        folder = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), folder)
    folder = re.sub(r"^(\$PWD|\$\{PWD\}|\.)/", "", folder)
    assert "$" not in folder, f"cannot resolve {folder!r} from scripts/build_book.sh"
    return folder


def test_readme_build_command_is_the_build_script():
    assert readme_build_command() == "bash scripts/build_book.sh"


def test_workflow_runs_the_readme_build_command():
    runs = [s["run"].strip() for s in steps() if "run" in s]
    assert readme_build_command() in runs
    (build,) = [s for s in steps() if s.get("run", "").strip() == readme_build_command()]
    assert "IWAE_SMOKE" not in str(build.get("env", {})), "the site is the full book, from the recorded runs"


def test_workflow_uploads_the_folder_the_build_writes():
    upload = step_using("actions/upload-pages-artifact")
    assert upload["with"]["path"].rstrip("/") == html_folder_of_build_script()
    names = [s.get("uses", s.get("run", "")).split("@")[0] for s in steps()]
    order = [names.index(n) for n in ("actions/checkout", "actions/setup-python", "actions/cache",
                                      readme_build_command(), "actions/upload-pages-artifact",
                                      "actions/deploy-pages")]
    assert order == sorted(order)


def test_workflow_caches_executed_notebooks_keyed_on_requirements():
    caches = [s for s in steps() if s.get("uses", "").startswith("actions/cache@")]
    (notebooks,) = [s for s in caches if s["with"]["path"] == "_build/full/jupyter_cache"]  # iwae_lib/chapters/build.py
    key, restore = notebooks["with"]["key"], notebooks["with"]["restore-keys"]
    assert key.startswith("jupyter-book-cache-${{ hashFiles('requirements.txt') }}-") and key.startswith(restore)
    for changes_the_outputs in ("iwae_lib/**", "results/**", "notebooks/**"):
        assert f"'{changes_the_outputs}'" in key[len(restore):]
    (data,) = [s for s in caches if s is not notebooks]  # the data files, keyed on their registry
    assert re.fullmatch(r"iwae-data-\$\{\{ hashFiles\('([\w/.]+)'\) \}\}", data["with"]["key"])
    assert (REPO / re.search(r"hashFiles\('([\w/.]+)'\)", data["with"]["key"]).group(1)).is_file()
    assert "REGISTRY" in (REPO / "iwae_lib" / "sources.py").read_text()
    execute = yaml.safe_load((REPO / "_config.yml").read_text())["execute"]
    assert execute["execute_notebooks"] == "cache"  # what makes that folder worth caching


def test_workflow_triggers_and_permissions():
    data = workflow()
    branch = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["branch"]
    assert data["on"]["push"]["branches"] == [branch]
    assert data["permissions"]["pages"] == "write" and data["permissions"]["id-token"] == "write"
    (job,) = data["jobs"].values()
    assert job["environment"]["name"] == "github-pages"
    assert step_using("actions/deploy-pages")["id"] == "deployment"
    assert step_using("actions/setup-python")["with"]["python-version"] == "3.11"  # as requirements.txt says
    assert "Python 3.11" in (REPO / "requirements.txt").read_text()
