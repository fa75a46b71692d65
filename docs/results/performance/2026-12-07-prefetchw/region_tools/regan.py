import subprocess, collections, sys, glob
so=glob.glob(sys.argv[2]+"/motifcore/_core*.so")[0]
syms={}
for line in subprocess.run(["nm","-C",so],capture_output=True,text=True).stdout.splitlines():
    p=line.split(" ",2)
    if len(p)==3 and p[0] and p[1] in "tTwW": syms[int(p[0],16)]=p[2]
def name(off):
    off=int(off,16); s=syms.get(off,hex(off))
    s=s.replace("motifcore::","").replace("isa_avx512::","")
    i=s.find("parallel_for<")
    return s[i+13:i+13+int(sys.argv[4]) if len(sys.argv)>4 else i+80] if i>=0 else s[:80]
rows=[l.split() for l in open(sys.argv[1])]
nsteps=int(sys.argv[3]); rows=rows[-nsteps*26:]  # approx last steps
agg=collections.defaultdict(list)
for r in rows:
    t0,n,team,wall,busy,wbusy,mine,off=r
    agg[(name(off),int(n))].append((float(wall),float(busy),float(wbusy),int(mine)))
cnt=nsteps
tot=sum(float(r[3]) for r in rows)/cnt
out=[]
for k,v in agg.items():
    w=sum(x[0] for x in v)/cnt; b=sum(x[1] for x in v)/cnt; wb=sum(x[2] for x in v)/cnt
    out.append((w-(b+wb)/2,w,b,wb,len(v)/cnt,k))
out.sort(key=lambda o:-o[1])
print(f"regions/step {len(rows)/cnt:.1f} wall in regions/step {tot:.1f} us")
print(f"{'waste':>7} {'wall':>7} {'cbusy':>7} {'wbusy':>7} {'per':>4} {'n':>6} name")
for o in out: print(f"{o[0]:7.1f} {o[1]:7.1f} {o[2]:7.1f} {o[3]:7.1f} {o[4]:4.1f} {o[5][1]:6d} {o[5][0]}")
print("sum waste/step", sum(o[0] for o in out))
