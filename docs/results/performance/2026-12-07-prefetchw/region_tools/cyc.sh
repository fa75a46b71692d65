#!/bin/bash
# usage: cyc.sh N label1 site1 label2 site2 ...
N=$1; shift
for i in $(seq 1 $N); do
  args=("$@")
  for ((k=0; k<${#args[@]}; k+=2)); do
    lab=${args[k]}; site=${args[k+1]}
    rt=$(/tmp/core_probe | head -1 | awk '{print $7}')
    MC_REGION_LOG=/tmp/s40/cyc_$lab.txt python /tmp/s40/steps.py $site 2 2 > /tmp/s40/cyc_out.txt
    rt2=$(/tmp/core_probe | head -1 | awk '{print $7}')
    python /tmp/s40/summ.py /tmp/s40/cyc_$lab.txt $site "$lab $rt $rt2 $(awk '{print $4}' /tmp/s40/cyc_out.txt)"
  done
done
