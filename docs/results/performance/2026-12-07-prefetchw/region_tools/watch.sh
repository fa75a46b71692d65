#!/bin/bash
# usage: watch.sh SECONDS label1 site1 ...   runs a cycle only when the probe says slow
end=$(( $(date +%s) + $1 )); shift
while [ $(date +%s) -lt $end ]; do
  rt=$(/tmp/core_probe | head -1 | awk '{print $7}')
  if [ "$rt" -ge 200 ]; then ./cyc.sh 1 "$@"; else sleep 4; fi
done
