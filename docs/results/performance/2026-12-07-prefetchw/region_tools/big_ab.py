import sys, numpy as np
from motifcore import MotifMLP
out={}
rng=np.random.default_rng(3)
X=rng.random((300,784),dtype=np.float32); y=rng.integers(0,10,300)
for t in (1,2):
    for opt in ("sgd","adam"):
        for dens in (0.1, 1.0):
            sizes=[784,3000,3000,3000,10] if dens<1 else [784,512,256,10]
            m=MotifMLP(sizes, motif=1, density=dens, seed=0, num_threads=t)
            for i in range(3): m.train_step(X[i*100:(i+1)*100] if i<2 else X[200:237], y[i*100:(i+1)*100] if i<2 else y[200:237], optimizer=opt)
            out[f"{t}{opt}{dens}logits"]=m.predict_proba(X[:50]) if hasattr(m,'predict_proba') else None
            for j,l in enumerate(m.layers):
                out[f"{t}{opt}{dens}K{j}"]=np.array(l.weights if hasattr(l,'weights') else l.get_weights())
print(len(out)); np.savez(sys.argv[1], **{k:v for k,v in out.items() if v is not None})
