# Shared by the campaign scripts (source it after `cd` into the workspace and setting
# TASK): run a stage with its wall time (waiting while another process runs it), run one
# and print the version it published, print a version's validation score, list the newest
# int8 export of each exported model.
run() {  # a stage another script runs in this workspace (exit 75, locked): wait, retry
  echo "+ theseus $*"
  local rc
  while :; do
    /usr/bin/time -f "wall %e s" theseus "$@" && return 0 || rc=$?
    [ "$rc" -eq 75 ] || return "$rc"
    echo "(the stage is running in another process: retrying in 60 s)"; sleep 60
  done
}
version_of() {  # run a stage; print the version it published or found up to date (v3)
  # (its output goes to the log through a file: a `tee /dev/stderr` reopens the log and
  # writes over it from its start)
  local tmp; tmp=$(mktemp)
  run "$@" > "$tmp" 2>&1 || { cat "$tmp" >&2; rm -f "$tmp"; return 1; }
  cat "$tmp" >&2
  grep -oE "$TASK/$1/v[0-9]+" "$tmp" | tail -1 | cut -d/ -f3
  rm -f "$tmp"
}
score_of() {  # the validation score (a fraction) of a version: score_of STAGE VERSION
  python -c "import json,sys; print(json.load(open(sys.argv[1]))['metrics']['score'])" \
    "artifacts/$TASK/$1/$2/manifest.json"
}
newest_int8_exports() {  # "v3,v7": the newest export with an int8 file of each model
  python - "$TASK" <<'PY'
import json, pathlib, sys
newest = {}
for d in sorted(pathlib.Path("artifacts", sys.argv[1], "export").glob("v*"),
                key=lambda p: int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if "onnx_int8_mb" in m["metrics"]:
        newest[m["info"]["model_artifact"]] = d.name
print(",".join(newest.values()))
PY
}
