#!/usr/bin/env bash
# The library's dependency contract: the wheel builds, installs into a clean virtualenv at the floors of its
# declared ranges (so beside an older aws-cdk-lib 2.x release than the one the app pins), and the library
# example app synthesizes from it. Needs the package registries; run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
# build/ is setuptools' staging folder in the checkout: removed afterwards only if this run created it.
[ -e build ] && made_build="" || made_build=build
trap 'rm -rf "$work" $made_build' EXIT
.venv/bin/python -m build --wheel --outdir "$work/dist" . > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
# "name==floor" for every ">=floor" of [project].dependencies.
floors=$(.venv/bin/python - <<'PY'
import re, tomllib
for requirement in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    name, floor = re.match(r"^([A-Za-z0-9_.\-]+)>=([^,]+)", requirement).groups()
    print(f"{name}=={floor}")
PY
)
python3 -m venv "$work/venv"
# shellcheck disable=SC2086  # one requirement per word
wheel=$(ls "$work"/dist/*.whl)
"$work/venv/bin/pip" install --quiet "$wheel[node]" $floors
"$work/venv/bin/pip" list --format=freeze | grep -E "^(aws-cdk-lib|constructs|cdk8s|rich|PyYAML)=="
# From a folder outside the checkout, so only the installed wheel can be imported.
(cd "$work" && CDK_OUTDIR="$work/cdk.out" "$work/venv/bin/python" "$OLDPWD/examples/existing_vpc_inference/app.py")
ls "$work/cdk.out"/*.template.json
echo "wheel: built, installed at the declared floors, example app synthesized"
