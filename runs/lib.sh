# Helpers sourced by the run scripts in runs/ (before their first cd):
#   . "$(dirname "$0")/lib.sh"
# run STAGE ARGS...   echo the theseus command, run it, and print its wall time (s)
# newest STAGE [TASK] the newest version of STAGE in this workspace (TASK: MRPC)
run() { echo "+ theseus $*"; /usr/bin/time -f "wall %e s" theseus "$@"; }
newest() { ls -d "artifacts/${2:-MRPC}/$1"/v* | sort -V | tail -1 | xargs basename; }
