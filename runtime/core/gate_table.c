/* gate_table.c — the gate registry: every fact about a gate that is not its kernel.
 * Compiled once (not per kernel set), so a gate has one qd_gate_info whatever kernels run.
 * Adding a gate is a row here (its id in qd.h's qd_gate_id, in the same order), its
 * matrix in gates.c's gate_matrix and its kernel class in gates.c's kind_of. */
#include "qd.h"
#include "qd_circuit.h"
#include <math.h>
#include <string.h>

#define R {0.5, 0.5, 0.5}    /* rotations exp(-i a P/2): frequency 1/2 */
#define PH {1.0, 1.0, 1.0}   /* phases e^{i a}: frequency 1 */
#define NONE {0, 0, 0}

/* Order must match qd_gate_id (checked by qd_gate_get's callers' tests: test_gates.c). */
static const qd_gate_info table[QD_G_COUNT] = {
    {"id", 1, 0, "identity [[1,0],[0,1]]", QD_G_ID, QD_GF_DIAG | QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"x", 1, 0, "Pauli X [[0,1],[1,0]]", QD_G_X, QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"y", 1, 0, "Pauli Y [[0,-i],[i,0]]", QD_G_Y, QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"z", 1, 0, "Pauli Z diag(1,-1)", QD_G_Z, QD_GF_DIAG | QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"h", 1, 0, "Hadamard [[1,1],[1,-1]]/sqrt(2)", QD_G_H, 0, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"s", 1, 0, "S = sqrt(Z) = diag(1,i)", QD_G_S, QD_GF_DIAG | QD_GF_PERM, 0, QD_INV_OTHER, QD_G_SDG, NONE, 0},
    {"sdg", 1, 0, "S^dagger = diag(1,-i)", QD_G_SDG, QD_GF_DIAG | QD_GF_PERM, 0, QD_INV_OTHER, QD_G_S, NONE, 0},
    {"t", 1, 0, "T = diag(1,e^{i pi/4})", QD_G_T, QD_GF_DIAG | QD_GF_PERM, 0, QD_INV_OTHER, QD_G_TDG, NONE, 0},
    {"tdg", 1, 0, "T^dagger = diag(1,e^{-i pi/4})", QD_G_TDG, QD_GF_DIAG | QD_GF_PERM, 0, QD_INV_OTHER, QD_G_T, NONE, 0},
    {"sx", 1, 0, "sqrt(X) = [[1+i,1-i],[1-i,1+i]]/2", QD_G_SX, 0, 0, QD_INV_OTHER, QD_G_SXDG, NONE, 0},
    {"sxdg", 1, 0, "sqrt(X)^dagger = [[1-i,1+i],[1+i,1-i]]/2", QD_G_SXDG, 0, 0, QD_INV_OTHER, QD_G_SX, NONE, 0},
    {"rx", 1, 1, "rx(theta) = exp(-i theta X/2) = [[c,-is],[-is,c]], c=cos(theta/2), "
                 "s=sin(theta/2)", QD_G_RX, 0, 'X', QD_INV_NEGATE, 0, R, 0},
    {"ry", 1, 1, "ry(theta) = exp(-i theta Y/2) = [[c,-s],[s,c]]", QD_G_RY, 0, 'Y', QD_INV_NEGATE, 0, R, 0},
    {"rz", 1, 1, "rz(theta) = exp(-i theta Z/2) = diag(e^{-i theta/2},e^{i theta/2})", QD_G_RZ, QD_GF_DIAG, 'Z', QD_INV_NEGATE, 0, R, 0},
    {"p", 1, 1, "phase p(lambda) = diag(1,e^{i lambda})", QD_G_P, QD_GF_DIAG, 0, QD_INV_NEGATE, 0, PH, 0},
    /* theta enters as cos/sin(theta/2), phi and lambda as e^{i phi}, e^{i lambda} */
    {"u", 1, 3, "u(theta,phi,lambda) = [[c,-e^{i lambda}s],[e^{i phi}s,e^{i(phi+lambda)}c]] "
                "(OpenQASM 3 U)", QD_G_U, 0, 0, QD_INV_U, 0, {0.5, 1.0, 1.0}, 0},
    {"cx", 2, 0, "controlled X (CNOT), control first: |1b> -> |1,1-b>", QD_G_CX, QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"cy", 2, 0, "controlled Y, control first", QD_G_CY, QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"cz", 2, 0, "controlled Z = diag(1,1,1,-1)", QD_G_CZ, QD_GF_DIAG | QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"ch", 2, 0, "controlled Hadamard, control first", QD_G_CH, 0, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"swap", 2, 0, "swap |ab> -> |ba>", QD_G_SWAP, QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    /* controlled rotations: generator |1><1| (x) P/2, eigenvalues {0, +-1/2}: four-term rule */
    {"crx", 2, 1, "controlled rx(theta), control first", QD_G_CRX, 0, 0, QD_INV_NEGATE, 0, R, 1},
    {"cry", 2, 1, "controlled ry(theta), control first", QD_G_CRY, 0, 0, QD_INV_NEGATE, 0, R, 1},
    {"crz", 2, 1, "controlled rz(theta) = diag(1,1,e^{-i theta/2},e^{i theta/2})", QD_G_CRZ, QD_GF_DIAG, 0, QD_INV_NEGATE, 0, R, 1},
    {"cp", 2, 1, "controlled phase cp(lambda) = diag(1,1,1,e^{i lambda})", QD_G_CP, QD_GF_DIAG, 0, QD_INV_NEGATE, 0, PH, 0},
    {"rxx", 2, 1, "rxx(theta) = exp(-i theta X(x)X/2)", QD_G_RXX, 0, 'X', QD_INV_NEGATE, 0, R, 0},
    {"ryy", 2, 1, "ryy(theta) = exp(-i theta Y(x)Y/2)", QD_G_RYY, 0, 'Y', QD_INV_NEGATE, 0, R, 0},
    {"rzz", 2, 1, "rzz(theta) = exp(-i theta Z(x)Z/2) = "
                  "diag(e^{-it/2},e^{it/2},e^{it/2},e^{-it/2})", QD_G_RZZ, QD_GF_DIAG, 'Z', QD_INV_NEGATE, 0, R, 0},
    {"ccx", 3, 0, "Toffoli: X on the third qubit when the first two are 1", QD_G_CCX, QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    {"cswap", 3, 0, "Fredkin: swap the last two qubits when the first is 1", QD_G_CSWAP, QD_GF_PERM, 0, QD_INV_NEGATE, 0, NONE, 0},
    /* Qiskit's echoed cross-resonance gate, first argument first: (X(x)I - Y(x)X)/sqrt(2);
     * Hermitian and its own inverse */
    {"ecr", 2, 0, "echoed cross-resonance (X(x)I - Y(x)X)/sqrt(2), first qubit first (Qiskit's "
                  "ECR)", QD_G_ECR, 0, 0, QD_INV_NEGATE, 0, NONE, 0},
};

const qd_gate_info *qd_gate_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < QD_G_COUNT; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

const qd_gate_info *qd_gate_list(size_t *count)
{
    if (count)
        *count = QD_G_COUNT;
    return table;
}

const qd_gate_info *qd_gate_get(qd_gate_id id)
{
    return (int)id >= 0 && id < QD_G_COUNT ? &table[id] : NULL;
}

/* ------------------------------------------------------------------ gate algebra */

void qd_gate_inverse(const qd_gate_info *g, const double *p, const qd_gate_info **gi,
                     double *pi)
{
    *gi = g;
    switch (g->inv) {
    case QD_INV_OTHER:
        *gi = &table[g->inverse];
        break;
    case QD_INV_U:
        /* U(t, f, l)^-1 = U(-t, -l, -f) (OpenQASM 3 U, no leftover phase) */
        pi[0] = -p[0];
        pi[1] = -p[2];
        pi[2] = -p[1];
        return;
    case QD_INV_NEGATE:
        break;
    }
    /* every other parametric gate is exp(-i a G) or a phase e^{i a}: negate */
    for (int i = 0; i < g->nparams; i++)
        pi[i] = -p[i];
}

double qd_gate_freq(const qd_gate_info *g, int i)
{
    return i >= 0 && i < g->nparams ? g->freq[i] : 0.5;
}

int qd_gate_ps_fourterm(const qd_gate_info *g, int i)
{
    (void)i;
    return g->fourterm;
}
