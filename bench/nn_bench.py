# nn_bench.py — the PyTorch side of bench/nn_bench.lua: the same MLP (float64), MSE, backward, one thread.
# /usr/bin/python3 bench/nn_bench.py [B=512]
import torch, time, sys
torch.set_num_threads(1)
B=int(sys.argv[1]) if len(sys.argv)>1 else 512
net=torch.nn.Sequential(torch.nn.Linear(65,256),torch.nn.ReLU(),torch.nn.Linear(256,256),torch.nn.ReLU(),torch.nn.Linear(256,64),torch.nn.Sigmoid()).double()
X=torch.rand(B,65,dtype=torch.float64); T=torch.rand(B,64,dtype=torch.float64)
lf=torch.nn.MSELoss()
def step():
    net.zero_grad(); L=lf(net(X),T); L.backward(); return L
for _ in range(5): step()
t=time.perf_counter(); n=200
for _ in range(n): step()
print("torch B=%d: %.3f ms/step"%(B,(time.perf_counter()-t)/n*1e3))
