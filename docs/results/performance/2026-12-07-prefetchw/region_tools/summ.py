import sys, subprocess, glob, collections
so=glob.glob(sys.argv[2]+"/motifcore/_core*.so")[0]
syms={}
for line in subprocess.run(["nm","-C",so],capture_output=True,text=True).stdout.splitlines():
    p=line.split(" ",2)
    if len(p)==3 and p[0] and p[1] in "tTwW": syms[int(p[0],16)]=p[2]
rows=[l.split() for l in open(sys.argv[1])]
rows=rows[-150*26:]
acc=collections.Counter()
for r in rows:
    s=syms.get(int(r[7],16),"?")
    for k in ("chunked_update","group_backward","fused_backward","spmm_tiled","gather_prefetched","expand_bias","rows_to_panel"):
        if k in s: acc[k]+=float(r[3]); break
    acc["all"]+=float(r[3])
print(sys.argv[3], " ".join(f"{k[:6]}={v/150:.0f}" for k,v in acc.items()), flush=True)
