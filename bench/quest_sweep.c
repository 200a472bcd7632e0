/* quest_sweep.c — the QuEST side of bench/quest.sh (built against a QuEST v3.7 tree named by
 * QUEST_SRC; never part of qd's build). The same sweeps as `bench_core sweep`:
 *
 *   quest_sweep SVN DMN
 *     h, ry, cx(q, q+1 mod n) on every qubit of an SVN-qubit state vector;
 *     mixDepolarising(p = 0.1) and mixDamping(gamma = 0.2) on every qubit of a DMN-qubit
 *     density matrix.
 * One line per operation: "quest NAME ns_per_element", where an element is an amplitude
 * (state vector) or a matrix entry (density matrix) and the time is for one gate on one
 * qubit, averaged over the sweep; median of 5 sweeps. Threads: OMP_NUM_THREADS. */
#include <stdio.h>
#include <stdlib.h>
#include "QuEST.h"
#include "bench_time.h"

enum { H, RY, CX, DEPOL, DAMP };

typedef struct {
    Qureg q;
    int n, op;
} sweep_arg;

static int sweep(void *v)
{
    const sweep_arg *s = v;
    Qureg q = s->q;
    const int n = s->n, op = s->op;
    for (int t = 0; t < n; t++) {
        switch (op) {
        case H: hadamard(q, t); break;
        case RY: rotateY(q, t, 0.3 + 0.01 * t); break;
        case CX: controlledNot(q, t, (t + 1) % n); break;
        case DEPOL: mixDepolarising(q, t, 0.1); break;
        case DAMP: mixDamping(q, t, 0.2); break;
        }
    }
    return 0;
}

static void run(Qureg q, int n, double elems, int op, const char *name)
{
    sweep_arg s = {q, n, op};
    printf("quest %-6s %.4f\n", name, bench_median5(sweep, &s) / n / elems * 1e9);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: quest_sweep SVN DMN\n");
        return 2;
    }
    int ns = atoi(argv[1]), nd = atoi(argv[2]);
    QuESTEnv env = createQuESTEnv();
    Qureg sv = createQureg(ns, env);
    initPlusState(sv);
    double amps = (double)(1LL << ns);
    run(sv, ns, amps, H, "h");
    run(sv, ns, amps, RY, "ry");
    run(sv, ns, amps, CX, "cx");
    destroyQureg(sv, env);
    Qureg dm = createDensityQureg(nd, env);
    initPlusState(dm);
    double ents = (double)(1LL << nd) * (double)(1LL << nd);
    run(dm, nd, ents, DEPOL, "depol");
    run(dm, nd, ents, DAMP, "damp");
    destroyQureg(dm, env);
    destroyQuESTEnv(env);
    return 0;
}
